"""Runs last in the suite: the README's Reliability table is exactly what this run measured."""

from __future__ import annotations

import os

import pytest

from tests.reliability.report import Report, readme_block, write_readme_block


def test_readme_reliability_table_matches_this_run(report: Report) -> None:
    if not report.complete:
        pytest.skip("only the whole reliability suite produces the table; this run selected a subset of it")
    table = report.render()
    if os.environ.get("UPDATE_README"):
        write_readme_block(table)
    assert readme_block() == table, (
        "the README's Reliability table is out of date: run `make reliability-report`"
    )

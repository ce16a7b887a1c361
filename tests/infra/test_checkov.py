"""checkov on template.yaml: zero findings beyond the ones explained in checkov_exceptions.yaml."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fanfare_sync_cli.local.template import PROJECT_ROOT

pytestmark = pytest.mark.slow
EXCEPTIONS_FILE = Path(__file__).with_name("checkov_exceptions.yaml")


def checkov() -> str:
    for candidate in (os.environ.get("CHECKOV"), str(PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip(
        "checkov is not installed here; `make test` installs it into .venv-checkov and runs this test"
    )


@pytest.fixture(scope="module")
def findings() -> list[dict[str, Any]]:
    completed = subprocess.run(
        [
            checkov(),
            "--file",
            "template.yaml",
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--compact",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    # checkov exits 1 when a check fails; anything else (or no JSON) means it did not run properly.
    assert completed.returncode in (0, 1), completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["results"]["parsing_errors"] == []
    assert len(report["results"]["passed_checks"]) > 10  # it really scanned the template
    failed: list[dict[str, Any]] = report["results"]["failed_checks"]
    return failed


@pytest.fixture(scope="module")
def exceptions() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = yaml.safe_load(EXCEPTIONS_FILE.read_text(encoding="utf-8"))
    return loaded


def test_every_finding_is_explained(
    findings: list[dict[str, Any]], exceptions: dict[str, dict[str, str]]
) -> None:
    unexplained = sorted(
        {f"{f['check_id']} {f['resource']}" for f in findings if f["check_id"] not in exceptions}
    )
    assert unexplained == [], "fix these, or explain them in tests/infra/checkov_exceptions.yaml"


def test_no_exception_outlives_its_finding(
    findings: list[dict[str, Any]], exceptions: dict[str, dict[str, str]]
) -> None:
    assert set(exceptions) <= {f["check_id"] for f in findings}


def test_every_exception_says_why(exceptions: dict[str, dict[str, str]]) -> None:
    for check, entry in exceptions.items():
        assert len(entry["reason"]) > 80, check
        assert entry["title"], check

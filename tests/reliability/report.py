"""The README "Reliability" table, produced by the reliability suite rather than written by hand.

Each scenario records one row. The last test of test_reliability.py compares the rendered table with
the block between the README markers and fails when they differ; `make reliability-report`
(UPDATE_README=1) writes the fresh table instead. Every figure is deterministic (faults are planned per
order, not random draws), so a fresh run reproduces the table exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"

SCENARIOS = (
    "Fanfare failing ~30 % of calls (5xx, 429 + Retry-After, timeouts)",
    "SQS unavailable at ingest, then the platform retries",
    "DynamoDB throttling on the consumer",
    "Consumer killed between the Fanfare call and the delete",
    "Secrets Manager unavailable, then back",
    "Same webhook 10 times, concurrently and spread over time",
    "Replay after the idempotency record expired",
    "Forged, mutated and hostile webhooks (fuzz sample)",
)


@dataclass(frozen=True)
class Row:
    scenario: str
    inputs: str
    faults: str
    lost: int
    duplicate_completions: int
    unauthorized_queued: int


@dataclass
class Report:
    rows: dict[str, Row] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        assert row.scenario in SCENARIOS, row.scenario
        self.rows[row.scenario] = row

    @property
    def complete(self) -> bool:
        return set(self.rows) == set(SCENARIOS)

    def render(self) -> str:
        lines = [
            "| scenario | inputs | faults injected | lost | duplicate completions "
            "| unauthorized messages queued |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name in SCENARIOS:
            row = self.rows[name]
            lines.append(
                f"| {row.scenario} | {row.inputs} | {row.faults} | {row.lost} | {row.duplicate_completions} "
                f"| {row.unauthorized_queued} |"
            )
        return "\n".join(lines)


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index(START) + len(START) : text.index(END)].strip()


def write_readme_block(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")


REPORT = Report()

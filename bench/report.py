"""The table (terminal and README), the JSON results, and the README block between the bench markers."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import README, RESULTS_DIR, Result

START_MARKER = "<!-- bench:start -->"
END_MARKER = "<!-- bench:end -->"
LATEST = RESULTS_DIR / "latest.json"

# Always shown under the table: how to read the figures that are not plain ratios.
STANDING_NOTES = (
    "Speed figures are ratios of two things timed alternately in the same run (medians and nearest-rank "
    "p99); milliseconds are for reference only. Handlers run in-process with their template environment "
    "against a moto server subprocess and the Fanfare sandbox, as the integration tests load them; moto's "
    "SendMessage (~4-8 ms here) stands in for SQS's.",
    "Cold start: one fresh process per sample, clock from the child's first line to after the first "
    'response; the baseline is `import boto3; boto3.client("sqs")`. With fewer than 100 rounds p99 is the '
    "slowest round. The consumer's floor is a process with none of fanfare_sync's code that imports what "
    "the consumer cannot skip (boto3, httpx, Powertools' idempotency, pydantic) and makes one record's "
    "round trips; it measured 1.47-1.78x across runs on this machine, so the consumer's 1.6x target sits "
    "at that floor and its row can flip between pass and miss with the machine's noise.",
    'Batch concurrency: the honest figure for the target ("a batch of 10 costs about one Fanfare round '
    "trip\") is the Fanfare-attributable one, (t50 - t0) / 50 ms: it isolates how the batch's Fanfare calls "
    "overlap (1 = the batch pays one round trip, 10 = sequential; below 1 the wait hides behind other "
    "records' DynamoDB calls). The raw figure adds each record's four sequential DynamoDB calls (order "
    "read, idempotency put and update, order write), here served one at a time by single-process moto at "
    "~6-13 ms each: ~0.4-0.5 s per batch of 40 calls, which no change to the consumer's concurrency can "
    "hide. That is the floor of the raw figure on this machine; the row's note gives it per run.",
    "Burst: `make run`'s local stack with 5 workers per function (so the consumer polls with the "
    "template's CompletionMaxConcurrency, 5), retry delays compressed to 1 s with the 10 % 5xx on "
    "throughout; ingest latency is mostly queueing for the 5 local ingest workers and moto (32 webhooks in "
    "flight), not handler time. It sends as much of the 5,000 as lets the queue drain within the "
    "10-minute budget.",
    "Cost: requests counted on the code path (DynamoDB units sized from the items, GSI writes included), "
    "Lambda at the template's memory and the durations measured above (the consumer's batch time is "
    "moto-bound, so its compute is overstated), prices in `bench/cost.py`.",
)


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def table(results: list[Result]) -> str:
    rows = ["| benchmark | measured | target | result |", "| --- | --- | --- | --- |"]
    for result in results:
        mark = f"**{result.mark}**" if result.mark == "MISS" else result.mark
        rows.append(f"| {result.title} | {_cell(result.measured)} | {_cell(result.target)} | {mark} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def write_json(results: list[Result], info: dict[str, Any], seconds: float) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(seconds, 1),
        "machine": info,
        "results": [result.to_json() for result in results],
    }
    LATEST.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return LATEST


def readme_block(results: list[Result], info: dict[str, Any], seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        table(results),
        "",
        f"Measured {when} by `make bench` in {seconds / 60:.1f} min on {info['nproc']} cores "
        f"({info['cpu'] or 'unknown CPU'}, shared), Python {info['python']}; load average "
        f"{info['load_average_at_start'][0]} at the start. Reproduce with `make bench`; the figures and "
        "their raw samples' summaries are in `bench/results/latest.json`.",
        "",
    ]
    lines += [f"- {note}" for note in STANDING_NOTES]
    for result in results:
        if result.note and (result.passed is False or result.key in ("batch_concurrency", "cost_model")):
            lines.append(f"- **{result.title}**: {result.note}.")
    return "\n".join(lines)


def update_readme(block: str, path: Path = README) -> None:
    """Replace only what lies between the markers; everything else in the README stays byte for byte."""
    text = path.read_text(encoding="utf-8")
    start = text.find(START_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < start:
        raise RuntimeError(f"{path} lacks the {START_MARKER} ... {END_MARKER} markers")
    head = text[: start + len(START_MARKER)]
    tail = text[end:]
    path.write_text(f"{head}\n{block}\n{tail}", encoding="utf-8")

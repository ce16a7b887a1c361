"""`make bench`: run every benchmark, print the table, write bench/results/latest.json and the README block.

    .venv/bin/python -m bench.run                # the full run (under 10 minutes on 2 cores)
    BENCH_QUICK=1 .venv/bin/python -m bench.run  # a smoke test of the harness: prints, writes nothing
    BENCH_ONLY=ingest,cold_start .venv/bin/python -m bench.run  # some steps (ingest, batch, cold_start,
                                                  # cost, memory, burst); prints, writes nothing

Benchmarks run from the most timing-sensitive to the heaviest, so the burst's load never overlaps a ratio.
A benchmark that crashes is reported as an error row and makes the exit status non-zero; a missed target
does not (it is a finding, and the table says so).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from types import ModuleType

from bench import batch, burst, cold_start, cost, ingest, memory
from bench.common import CONSUMER_FUNCTION, QUICK, LocalAws, Result, capture_output, say
from bench.report import machine as machine_info
from bench.report import readme_block, table, update_readme, write_json

# BENCH_ONLY: a comma-separated subset of the steps, for working on one path; nothing is written.
ONLY = frozenset(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
# Steps that reuse the ingest step's measurements (its message body, its loaded handler); cost also
# reuses the batch step's.
_NEEDS_INGEST = frozenset({"batch", "cold_start", "cost", "memory"})
# The bound for the whole of `make bench` on a 2-core machine.
BUDGET_SECONDS = 600
# After the burst's deadline: its checks, stopping the local stack, the table and the files (~25 s), plus
# room for a noisy machine.
FINISH_RESERVE_SECONDS = 45
TABLE_ORDER = (
    "ingest_overhead",
    "ingest_cpu",
    "cold_start_ingest",
    "cold_start_consumer",
    "batch_concurrency",
    "burst",
    "memory_ingest",
    "memory_consumer",
    "cost_model",
)


class Suite:
    """Runs the benchmarks in order, keeping what later ones reuse (handlers, measured durations)."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.errors: list[str] = []
        self.ingest: ingest.IngestMeasurements | None = None
        self.batch: batch.BatchMeasurements | None = None
        self.ingest_module: ModuleType | None = None
        self.consumer_module: ModuleType | None = None

    def step(self, name: str, body: Callable[[], list[Result]]) -> None:
        needed = (name == "ingest" and ONLY & _NEEDS_INGEST) or (name == "batch" and "cost" in ONLY)
        if ONLY and name not in ONLY and not needed:
            return
        started = time.perf_counter()
        say(f"\n== {name}")
        try:
            produced = body()
        except Exception as error:
            self.errors.append(name)
            say(traceback.format_exc())
            produced = [Result(key=name, title=name, measured=f"error: {error}", target="-", passed=False)]
        self.results.extend(produced)
        for result in produced:
            say(f"  -> {result.title}: {result.measured}  [{result.mark}]")
        say(f"  ({time.perf_counter() - started:.0f} s)")

    def run_in_process(self, aws: LocalAws) -> None:
        self.step("ingest", lambda: self._ingest(aws))
        self.step("batch", lambda: self._batch(aws))
        self.step("cold_start", lambda: cold_start.run(aws, self._measured_ingest().message_body))
        self.step("cost", lambda: [self._cost(aws)])
        self.step("memory", lambda: memory.run(aws, self._measured_ingest().message_body))

    def _ingest(self, aws: LocalAws) -> list[Result]:
        rows, self.ingest, self.ingest_module = ingest.run(aws)
        return rows

    def _batch(self, aws: LocalAws) -> list[Result]:
        self.consumer_module = aws.load(CONSUMER_FUNCTION)
        row, self.batch = batch.run(aws, self._measured_ingest().message_body, self.consumer_module)
        return [row]

    def _cost(self, aws: LocalAws) -> Result:
        if self.batch is None or self.ingest_module is None or self.consumer_module is None:
            raise RuntimeError("the cost model needs the ingest and batch benchmarks' measurements")
        return cost.run(aws, self.ingest_module, self.consumer_module, self._measured_ingest(), self.batch)

    def _measured_ingest(self) -> ingest.IngestMeasurements:
        if self.ingest is None:
            raise RuntimeError("the ingest benchmark did not run")
        return self.ingest


def main() -> int:
    started = time.perf_counter()
    capture_output()
    info = machine_info()
    say(
        f"fanfare-sync benchmarks{' (BENCH_QUICK: thin figures, nothing written)' if QUICK else ''}: "
        f"{info['nproc']} cores, Python {info['python']}, load {info['load_average_at_start']}"
    )
    # The handlers must not reach real CloudWatch or X-Ray; Powertools reads this at import.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    suite = Suite()
    aws = LocalAws().start()
    say(f"moto server {aws.moto.endpoint_url}, Fanfare sandbox {aws.sandbox.base_url}")
    try:
        suite.run_in_process(aws)
    finally:
        aws.stop()
    # The burst is the heaviest: it gets whatever is left of the budget and says how much of it fit.
    burst_deadline = started + BUDGET_SECONDS - FINISH_RESERVE_SECONDS
    suite.step("burst", lambda: [burst.run(burst_deadline)])

    seconds = time.perf_counter() - started
    results = sorted(
        suite.results, key=lambda r: TABLE_ORDER.index(r.key) if r.key in TABLE_ORDER else len(TABLE_ORDER)
    )
    say("\n" + table(results))
    for result in results:
        if result.note:
            say(f"  {result.title}: {result.note}")
    say(f"\ntotal {seconds:.0f} s ({seconds / 60:.1f} min)")
    if not QUICK and not ONLY:
        path = write_json(results, info, seconds)
        update_readme(readme_block(results, info, seconds))
        say(f"wrote {path.relative_to(path.parents[2])} and the README benchmark block")
    return 1 if suite.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark 6: peak RSS of each handler after 1,000 warm invocations vs after 10, in a fresh process.

A leak per invocation (a growing cache, records kept by a singleton) shows as growth between the two marks;
the import-time footprint is the same at both. The two children run at the same time: memory is not a
timing figure, and it halves the wall time of this benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cold_start import CHILD, child_environment, handler_spec
from bench.common import (
    CONSUMER_FUNCTION,
    INGEST_FUNCTION,
    LocalAws,
    Result,
    fanfare_order,
    next_order_number,
    say,
    scaled,
    shopify_event,
    shopify_request,
)

TARGET_GROWTH = 0.05
INVOCATIONS = scaled(1000, 60)
EARLY_MARK = 10
CHILD_TIMEOUT_SECONDS = 300
# Consumer orders in the child are numbered from here, far from the parent's own order numbers.
CHILD_ORDER_BASE = 9_000_000_000


def run(aws: LocalAws, message_template: str) -> list[Result]:
    aws.sandbox.clear_faults()
    marks = [EARLY_MARK, INVOCATIONS]
    order = fanfare_order(next_order_number())
    ingest_spec = handler_spec(
        aws,
        INGEST_FUNCTION,
        event=shopify_event(*shopify_request(order, webhook_id=f"wh-{order.order_id}")),
        invocations=INVOCATIONS,
        marks=marks,
    )
    consumer_spec = handler_spec(
        aws,
        CONSUMER_FUNCTION,
        message_template=message_template,
        queue_arn=aws.queue_arn,
        first_order_id=CHILD_ORDER_BASE,
        invocations=INVOCATIONS,
        marks=marks,
    )
    say(f"  memory: {INVOCATIONS} warm invocations per handler, each in a fresh process (run side by side)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fanfare-bench-mem-") as tmp:
        workdir = Path(tmp)
        children: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for name, spec, logical_id in (
            ("ingest", ingest_spec, INGEST_FUNCTION),
            ("consumer", consumer_spec, CONSUMER_FUNCTION),
        ):
            spec_path = workdir / f"{name}-spec.json"
            result_path = workdir / f"{name}-result.json"
            spec_path.write_text(json.dumps(spec), encoding="utf-8")
            process = subprocess.Popen(
                [sys.executable, str(CHILD), str(result_path), "memory", str(spec_path)],
                env=child_environment(aws, logical_id),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            children[name] = (process, result_path)
        results: dict[str, dict[str, Any]] = {}
        for name, (process, result_path) in children.items():
            _, stderr = process.communicate(timeout=CHILD_TIMEOUT_SECONDS)
            if process.returncode != 0 or not result_path.exists():
                tail = stderr.decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"memory child {name} failed ({process.returncode}):\n{tail}")
            results[name] = json.loads(result_path.read_text(encoding="utf-8"))
    say(f"    done in {time.perf_counter() - started:.1f} s")
    aws.purge_queue()
    return [_result(name, results[name]["marks"]) for name in ("ingest", "consumer")]


def _result(name: str, marks: dict[str, dict[str, int]]) -> Result:
    early = marks[str(EARLY_MARK)]
    late = marks[str(INVOCATIONS)]
    growth = (late["VmHWM"] - early["VmHWM"]) / early["VmHWM"]
    passed = growth <= TARGET_GROWTH
    note = ""
    if not passed:
        note = (
            f"peak RSS grew {growth:.1%} between invocation {EARLY_MARK} and {INVOCATIONS}: "
            "something keeps state per invocation"
        )
    return Result(
        key=f"memory_{name}",
        title=f"memory ({name})",
        measured=(
            f"{growth:+.1%} peak RSS ({early['VmHWM'] / 1024:.1f} → {late['VmHWM'] / 1024:.1f} MiB "
            f"after {EARLY_MARK} → {INVOCATIONS} invocations)"
        ),
        target=f"growth ≤ {TARGET_GROWTH:.0%}",
        passed=passed,
        figures={
            "growth": round(growth, 4),
            "peak_rss_kib": {str(EARLY_MARK): early["VmHWM"], str(INVOCATIONS): late["VmHWM"]},
            "rss_kib": {str(EARLY_MARK): early["VmRSS"], str(INVOCATIONS): late["VmRSS"]},
            "invocations": INVOCATIONS,
        },
        note=note,
    )

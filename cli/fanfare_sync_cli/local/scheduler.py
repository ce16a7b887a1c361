"""Fire the template's ScheduleV2 events locally (moto's EventBridge Scheduler never fires)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fanfare_sync_cli.local.template import TemplateError

_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        raise TemplateError(f"schedule {expression!r}: only rate(...) expressions are emulated locally")
    amount, unit = int(match.group(1)), match.group(2).rstrip("s")
    return float(amount * _UNIT_SECONDS[unit])


def scheduler_event(schedule_name: str) -> dict[str, Any]:
    """What EventBridge Scheduler passes to a Lambda target when the schedule has no input of its own."""
    return {
        "source": "aws.scheduler",
        "detail-type": "Scheduled Event",
        "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "resources": [f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{schedule_name}"],
        "detail": {},
    }


class LocalSchedule:
    def __init__(self, name: str, every_seconds: float, invoke: Callable[[dict[str, Any]], Any]) -> None:
        self.name = name
        self.every_seconds = every_seconds
        self._invoke = invoke
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)
        self.runs = 0

    def start(self) -> LocalSchedule:
        self._thread.start()
        return self

    def _run(self) -> None:
        # Like a rate schedule: the first run one interval after it was created.
        while not self._stopping.wait(self.every_seconds):
            try:
                self._invoke(scheduler_event(self.name))
                self.runs += 1
            except Exception as error:  # a failed run is retried by the next one, as Scheduler would
                print(f"[schedule {self.name}] run failed: {type(error).__name__}: {error}", flush=True)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

"""The template's CloudWatch alarms, evaluated locally on the metrics the local stack produces.

moto stores alarms but never evaluates them, so the runtime does: the functions' EMF lines (forwarded by
their worker processes), plus the AWS metrics it can observe itself — SQS queue depth, Lambda errors, API
Gateway 5xx — are datapoints; each alarm is evaluated on them with its own statistic, period, threshold,
comparison and missing-data rule, and a line is printed (and the alarm's SNS topic notified) when its state
changes. `time_scale` shrinks periods when the schedules run faster than the template says.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MetricKey = tuple[str, str, frozenset[tuple[str, str]]]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_SYMBOL = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str
    period: float
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str
    description: str = ""
    actions: tuple[str, ...] = ()

    @property
    def key(self) -> MetricKey:
        return (self.namespace, self.metric, frozenset(self.dimensions.items()))

    @classmethod
    def from_template(cls, logical_id: str, props: dict[str, Any]) -> AlarmSpec:
        periods = int(props.get("EvaluationPeriods", 1))
        return cls(
            name=logical_id,
            namespace=str(props["Namespace"]),
            metric=str(props["MetricName"]),
            dimensions={str(d["Name"]): str(d["Value"]) for d in props.get("Dimensions", [])},
            statistic=str(props["Statistic"]),
            period=float(props["Period"]),
            evaluation_periods=periods,
            datapoints_to_alarm=int(props.get("DatapointsToAlarm", periods)),
            threshold=float(props["Threshold"]),
            comparison=str(props["ComparisonOperator"]),
            treat_missing=str(props.get("TreatMissingData", "missing")),
            description=str(props.get("AlarmDescription", "")),
            actions=tuple(str(a) for a in props.get("AlarmActions", [])),
        )


class MetricStore:
    """Datapoints by (namespace, metric name, dimension set), as CloudWatch keys them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._points: dict[MetricKey, list[tuple[float, float]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._clock = clock

    def record(self, namespace: str, metric: str, dimensions: dict[str, str], value: float) -> None:
        with self._lock:
            self._points[(namespace, metric, frozenset(dimensions.items()))].append((self._clock(), value))

    def record_emf(self, line: str) -> None:
        """One EMF blob: each metric directive names a namespace, dimension sets and metric names."""
        try:
            blob = json.loads(line)
            directives = blob["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        for directive in directives:
            for dimension_names in directive.get("Dimensions", [[]]):
                dimensions = {name: str(blob.get(name, "")) for name in dimension_names}
                for metric in directive.get("Metrics", []):
                    raw = blob.get(metric["Name"])
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, int | float):
                            self.record(directive["Namespace"], metric["Name"], dimensions, float(value))

    def values(self, key: MetricKey, start: float, end: float) -> list[float]:
        with self._lock:
            return [value for at, value in self._points.get(key, []) if start <= at < end]

    def total(self, namespace: str, metric: str) -> float:
        with self._lock:
            return sum(
                v
                for (ns, name, _), points in self._points.items()
                if (ns, name) == (namespace, metric)
                for _, v in points
            )


def statistic(name: str, values: list[float]) -> float | None:
    if not values:
        return None
    if name == "Sum":
        return sum(values)
    if name == "Maximum":
        return max(values)
    if name == "Minimum":
        return min(values)
    if name == "Average":
        return sum(values) / len(values)
    if name == "SampleCount":
        return float(len(values))
    raise ValueError(f"statistic {name} is not evaluated locally")


@dataclass
class AlarmState:
    spec: AlarmSpec
    state: str = "INSUFFICIENT_DATA"
    last_value: float | None = None


@dataclass
class LocalAlarms:
    specs: Iterable[AlarmSpec]
    store: MetricStore
    time_scale: float = 1.0
    notify: Callable[[AlarmSpec, str, str], None] = lambda _spec, _state, _line: None
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.states = {spec.name: AlarmState(spec) for spec in self.specs}

    def evaluate(self) -> list[str]:
        """Evaluate every alarm now; returns the lines for the alarms whose state changed."""
        now = self.clock()
        changes = []
        for alarm in self.states.values():
            new_state, value = self._evaluate(alarm.spec, now)
            alarm.last_value = value
            if new_state != alarm.state:
                previous, alarm.state = alarm.state, new_state
                if new_state == "ALARM" or previous == "ALARM":
                    line = self._describe(alarm.spec, new_state, value)
                    changes.append(line)
                    self.notify(alarm.spec, new_state, line)
        return changes

    def firing(self) -> list[str]:
        return [name for name, alarm in self.states.items() if alarm.state == "ALARM"]

    def _evaluate(self, spec: AlarmSpec, now: float) -> tuple[str, float | None]:
        period = spec.period * self.time_scale
        if now - self.started_at < period * spec.evaluation_periods:
            # Like a new alarm: no verdict until it has seen a full evaluation window.
            return "INSUFFICIENT_DATA", None
        breaching = 0
        latest: float | None = None
        compare = _COMPARE[spec.comparison]
        for index in range(spec.evaluation_periods):
            end = now - index * period
            # No samples is missing data (not a zero), for SampleCount too, as in CloudWatch.
            value = statistic(spec.statistic, self.store.values(spec.key, end - period, end))
            if index == 0:
                latest = value
            if value is None:
                breaching += spec.treat_missing == "breaching"
            elif compare(value, spec.threshold):
                breaching += 1
        return ("ALARM" if breaching >= spec.datapoints_to_alarm else "OK"), latest

    def _describe(self, spec: AlarmSpec, state: str, value: float | None) -> str:
        period = spec.period * self.time_scale
        shown = "no data" if value is None else f"{value:g}"
        scaled = f" (template {spec.period:g} s)" if self.time_scale != 1 else ""
        condition = f"{spec.metric} {spec.statistic} {shown} {_SYMBOL[spec.comparison]} {spec.threshold:g}"
        if state == "ALARM":
            return f"[alarm] {spec.name} is ALARM: {condition} over {period:g} s{scaled}. {spec.description}"
        return f"[alarm] {spec.name} is {state} again: {condition} over {period:g} s{scaled}"

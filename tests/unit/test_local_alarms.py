"""The local runtime's alarm evaluation follows CloudWatch's rules for the alarms the template declares."""

from __future__ import annotations

import json

import pytest

from fanfare_sync_cli.local.alarms import AlarmSpec, LocalAlarms, MetricStore
from fanfare_sync_cli.local.scheduler import rate_seconds
from fanfare_sync_cli.local.template import TemplateError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def spec(**overrides: object) -> AlarmSpec:
    props = {
        "Namespace": "FanfareSync",
        "MetricName": "StaleOrders",
        "Dimensions": [{"Name": "service", "Value": "fanfare-sync"}],
        "Statistic": "Maximum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmDescription": "stale orders",
    }
    props.update(overrides)
    return AlarmSpec.from_template("StaleOrdersAlarm", props)


def emf(value: float, name: str = "StaleOrders", dims: dict[str, str] | None = None) -> str:
    dims = dims if dims is not None else {"service": "fanfare-sync"}
    blob = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {
                    "Namespace": "FanfareSync",
                    "Dimensions": [list(dims)],
                    "Metrics": [{"Name": name, "Unit": "Count"}],
                }
            ],
        },
        **dims,
        name: [value],
    }
    return json.dumps(blob)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def alarms_for(alarm: AlarmSpec, clock: Clock, time_scale: float = 1.0) -> tuple[LocalAlarms, MetricStore]:
    store = MetricStore(clock=clock)
    return LocalAlarms([alarm], store, time_scale=time_scale, clock=clock, started_at=clock.now), store


def test_no_verdict_before_a_full_evaluation_window(clock: Clock) -> None:
    alarms, store = alarms_for(spec(), clock)
    store.record_emf(emf(3))
    clock.now += 10
    assert alarms.evaluate() == []
    assert alarms.states["StaleOrdersAlarm"].state == "INSUFFICIENT_DATA"


def test_fires_on_a_breaching_datapoint_and_clears_when_it_leaves_the_window(clock: Clock) -> None:
    alarms, store = alarms_for(spec(), clock)
    clock.now += 300
    store.record_emf(emf(2))
    clock.now += 1
    [line] = alarms.evaluate()
    assert line.startswith("[alarm] StaleOrdersAlarm is ALARM: StaleOrders Maximum 2 >= 1 over 300 s.")
    assert alarms.firing() == ["StaleOrdersAlarm"]
    store.record_emf(emf(0))
    clock.now += 299.5  # the breaching point has left the 300 s window; the 0 is still in it
    [line] = alarms.evaluate()
    assert line.startswith("[alarm] StaleOrdersAlarm is OK again")
    assert alarms.firing() == []


def test_datapoints_with_other_dimensions_do_not_count(clock: Clock) -> None:
    alarms, store = alarms_for(spec(), clock)
    clock.now += 300
    store.record_emf(emf(5, dims={"service": "fanfare-sync", "platform": "shopify"}))
    clock.now += 1
    alarms.evaluate()
    assert alarms.firing() == []


def test_missing_data_breaches_only_when_the_alarm_says_so(clock: Clock) -> None:
    silent = spec(
        Statistic="SampleCount",
        Period=900,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
    )
    alarms, store = alarms_for(silent, clock)
    clock.now += 900
    [line] = alarms.evaluate()
    assert "SampleCount no data < 1" in line
    store.record_emf(emf(0))
    clock.now += 1
    [line] = alarms.evaluate()
    assert "OK again" in line


def test_time_scale_shrinks_periods(clock: Clock) -> None:
    alarms, store = alarms_for(spec(), clock, time_scale=0.01)
    clock.now += 3
    store.record_emf(emf(1))
    clock.now += 0.5
    [line] = alarms.evaluate()
    assert "over 3 s (template 300 s)" in line


def test_datapoints_to_alarm_m_of_n(clock: Clock) -> None:
    alarms, store = alarms_for(spec(EvaluationPeriods=3, DatapointsToAlarm=2, Period=60), clock)
    clock.now += 180
    store.record_emf(emf(1))
    clock.now += 1
    alarms.evaluate()
    assert alarms.firing() == []
    clock.now += 60
    store.record_emf(emf(1))
    clock.now += 1
    alarms.evaluate()
    assert alarms.firing() == ["StaleOrdersAlarm"]


def test_emf_with_several_values_and_metrics_is_read_whole() -> None:
    store = MetricStore(clock=lambda: 5.0)
    blob = {
        "_aws": {
            "CloudWatchMetrics": [
                {
                    "Namespace": "FanfareSync",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "Completions"}, {"Name": "FanfareLatency"}],
                }
            ]
        },
        "service": "fanfare-sync",
        "Completions": [1.0, 1.0, 1.0],
        "FanfareLatency": 12.5,
    }
    store.record_emf(json.dumps(blob))
    store.record_emf("not json")
    store.record_emf('{"_aws": "garbage"}')
    assert store.total("FanfareSync", "Completions") == 3
    assert store.values(
        ("FanfareSync", "FanfareLatency", frozenset({("service", "fanfare-sync")})), 0, 10
    ) == [12.5]


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_expressions_are_refused_clearly() -> None:
    with pytest.raises(TemplateError, match="only rate"):
        rate_seconds("cron(0 3 * * ? *)")

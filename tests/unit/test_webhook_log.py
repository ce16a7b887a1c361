"""The webhook functions' one line per request: a structured log line that is also the EMF document."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from fanfare_sync.webhook_log import WebhookLog
from fanfare_sync_cli.local.alarms import MetricStore

EVENT = {
    "requestContext": {"requestId": "api-req-1", "http": {"method": "POST", "path": "/webhooks/shopify"}}
}
CONTEXT = SimpleNamespace(aws_request_id="lambda-req-1", function_name="ShopifyWebhookFunction")


def write(
    capsys: pytest.CaptureFixture[str], log: WebhookLog, outcome: str, level: str = "INFO"
) -> dict[str, Any]:
    log.request(level, "webhook handled", outcome, {"status_code": 200, "order_id": "42"}, EVENT, CONTEXT)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith('{"_aws"')  # what the local runtime and CloudWatch look for
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def new_log() -> WebhookLog:
    return WebhookLog(
        service="fanfare-sync",
        namespace="FanfareSync",
        platform="shopify",
        data_problem_outcomes=frozenset({"malformed"}),
        clock=lambda: 1795779244.5559,
    )


def test_the_line_carries_the_log_fields_and_the_webhooks_metric(capsys: pytest.CaptureFixture[str]) -> None:
    log = new_log()
    write(capsys, log, "queued")  # the container's first line also counts the cold start
    line = write(capsys, log, "queued")

    assert line["_aws"] == {
        "Timestamp": 1795779244555,
        "CloudWatchMetrics": [
            {
                "Namespace": "FanfareSync",
                "Dimensions": [["service", "platform", "outcome"]],
                "Metrics": [{"Name": "Webhooks", "Unit": "Count"}],
            }
        ],
    }
    assert line["timestamp"] == "2026-11-27T11:34:04.555Z"
    assert {k: line[k] for k in ("level", "message", "service", "platform", "outcome", "Webhooks")} == {
        "level": "INFO",
        "message": "webhook handled",
        "service": "fanfare-sync",
        "platform": "shopify",
        "outcome": "queued",
        "Webhooks": 1,
    }
    assert (line["status_code"], line["order_id"]) == (200, "42")
    assert (line["function_request_id"], line["correlation_id"], line["cold_start"]) == (
        "lambda-req-1",
        "api-req-1",
        False,
    )


def test_data_problems_and_the_cold_start_are_counted_in_the_same_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = new_log()
    first = write(capsys, log, "malformed", "ERROR")
    second = write(capsys, log, "malformed", "ERROR")

    store = MetricStore()
    store.record_emf(json.dumps(first))
    assert set(store._points) == {
        (
            "FanfareSync",
            "Webhooks",
            frozenset({("service", "fanfare-sync"), ("platform", "shopify"), ("outcome", "malformed")}),
        ),
        # service only: one alarm covers both platforms
        ("FanfareSync", "WebhookDataProblems", frozenset({("service", "fanfare-sync")})),
        (
            "FanfareSync",
            "ColdStart",
            frozenset({("service", "fanfare-sync"), ("function_name", "ShopifyWebhookFunction")}),
        ),
    }
    assert first["cold_start"] is True
    assert second["cold_start"] is False
    assert "ColdStart" not in second
    assert second["WebhookDataProblems"] == 1


def test_an_outcome_that_is_no_data_problem_is_not_counted_as_one(capsys: pytest.CaptureFixture[str]) -> None:
    line = write(capsys, new_log(), "unauthorized", "WARNING")
    assert "WebhookDataProblems" not in line
    assert [d["Metrics"][0]["Name"] for d in line["_aws"]["CloudWatchMetrics"]] == ["Webhooks", "ColdStart"]

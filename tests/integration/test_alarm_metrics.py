"""Every alarm in template.yaml watches a metric that something really emits, with the same dimensions.

The custom-namespace alarms are checked against EMF blobs captured from the real handlers driven through
the situations that emit them; the AWS-namespace alarms against the resources they must point at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from fanfare_sync_cli.local.alarms import AlarmSpec, MetricStore
from fanfare_sync_cli.local.gateway import build_http_api_event
from fanfare_sync_cli.local.lambda_context import LocalLambdaContext
from fanfare_sync_cli.local.moto_server import MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack
from fanfare_sync_cli.local.sqs_poller import sqs_lambda_record
from fanfare_sync_cli.local.stack import DEFAULT_SHOPIFY_WEBHOOK_SECRET
from fanfare_sync_cli.samples import shopify_headers
from fanfare_sync_cli.sandbox import FanfareSandbox


def template_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: r["Properties"] for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }


@pytest.fixture
def emitted(
    load_function: Callable[..., ModuleType],
    aws_stack: ProvisionedStack,
    moto_server: MotoServer,
    capsys: pytest.CaptureFixture[str],
) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """Drive each function through the situations its alarms are about, and collect what it emits."""
    context = LocalLambdaContext()
    # ingest: a signed but malformed body (WebhookDataProblems)
    shopify = load_function("ShopifyWebhookFunction")
    body = b'{"id": '
    event = build_http_api_event(
        "POST",
        "/webhooks/shopify",
        "",
        shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET),
        body,
        "::1",
    )
    shopify.lambda_handler(event, context)
    # monitor: one run (StaleOrders, OldestStaleOrderAgeSeconds)
    load_function("StaleOrdersFunction").lambda_handler({}, context)
    # consumer: Fanfare answering 401 (FanfareAuthFailures), then a record that crashes (RecordErrors)
    with FanfareSandbox(secret_key="sk_not_what_the_stack_has") as sandbox:
        consumer = load_function("CompleteAdmissionFunction", FANFARE_API_URL=sandbox.base_url)
        sqs = moto_server.client("sqs")
        queue = aws_stack.ref("CompletionQueue")
        message = {
            "kind": "order.paid",
            "platform": "shopify",
            "shop": "s",
            "orderId": "1",
            "topic": "orders/paid",
            "receivedAt": "2026-11-27T00:00:00Z",
            "itemCount": 1,
            "admissions": [{"distributionId": "q", "distributionType": "queue", "consumerId": "c"}],
        }
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(message))
        received = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"])["Messages"]
        arn = aws_stack.resources["CompletionQueue"].attributes["Arn"]
        records = [sqs_lambda_record(m, arn, "us-east-1") for m in received]
        consumer.lambda_handler({"Records": records}, context)

        def explode(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("bug")

        consumer.consumer._handler.orders.load = explode
        consumer.lambda_handler({"Records": records}, context)
    store = MetricStore()
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            store.record_emf(line)
    return set(store._points)


def test_custom_namespace_alarms_watch_metrics_the_code_emits(
    template: dict[str, Any],
    aws_stack: ProvisionedStack,
    emitted: set[tuple[str, str, frozenset[tuple[str, str]]]],
) -> None:
    custom = {
        name: AlarmSpec.from_template(name, aws_stack.resolve(props))
        for name, props in template_alarms(template).items()
        if props["Namespace"] == "FanfareSync"
    }
    assert set(custom) == {
        "StaleOrdersAlarm",
        "StaleMonitorSilentAlarm",
        "ConsumerRecordErrorsAlarm",
        "WebhookDataProblemsAlarm",
        "FanfareAuthFailuresAlarm",
    }
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    for name, alarm in custom.items():
        assert alarm.dimensions == {"service": service}, name
        assert alarm.key in emitted, (
            f"{name} watches {alarm.metric} {alarm.dimensions}, which nothing emitted"
        )


def test_aws_namespace_alarms_point_at_the_stacks_resources(template: dict[str, Any]) -> None:
    dims = {
        name: {d["Name"]: d["Value"] for d in props["Dimensions"]}
        for name, props in template_alarms(template).items()
        if props["Namespace"].startswith("AWS/")
    }
    assert dims == {
        "DlqDepthAlarm": {"QueueName": {"Fn::GetAtt": ["CompletionDLQ", "QueueName"]}},
        "CompletionBacklogAlarm": {"QueueName": {"Fn::GetAtt": ["CompletionQueue", "QueueName"]}},
        "ConsumerErrorsAlarm": {"FunctionName": {"Ref": "CompleteAdmissionFunction"}},
        "Ingest5xxAlarm": {"ApiId": {"Ref": "WebhookApi"}, "Stage": "$default"},
    }


def test_every_alarm_notifies_the_alerts_topic(template: dict[str, Any]) -> None:
    for name, props in template_alarms(template).items():
        assert props["AlarmActions"] == [{"Ref": "AlertsTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlertsTopic"}], name

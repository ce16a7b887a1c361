"""The two webhook functions, called as Lambda calls them, against moto's SQS and Secrets Manager."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from fanfare_sync_cli.local.alarms import MetricStore
from fanfare_sync_cli.local.function_worker import LAYER_PATH
from fanfare_sync_cli.local.gateway import build_http_api_event
from fanfare_sync_cli.local.moto_server import MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack
from fanfare_sync_cli.local.stack import DEFAULT_SHOPIFY_WEBHOOK_SECRET, DEFAULT_WC_WEBHOOK_SECRET
from fanfare_sync_cli.local.template import function_specs
from fanfare_sync_cli.samples import SampleOrder, shopify_headers, shopify_order, to_body
from tests.conftest import drain_queue, load_event, queue_depth

CONTRACT_FIELDS = {
    "v",
    "kind",
    "platform",
    "shop",
    "orderId",
    "topic",
    "deliveryId",
    "eventId",
    "triggeredAt",
    "receivedAt",
    "admissions",
    "amount",
    "currency",
    "itemCount",
}


@pytest.fixture
def shopify(load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("ShopifyWebhookFunction")


@pytest.fixture
def woocommerce(load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("WooCommerceWebhookFunction")


@pytest.fixture
def sqs(moto_server: MotoServer) -> Any:
    return moto_server.client("sqs")


def invoke(module: ModuleType, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = module.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_shopify_orders_paid_queues_one_contract_message(
    shopify: ModuleType, aws_stack: ProvisionedStack, sqs: Any, lambda_context: Any
) -> None:
    status, body = invoke(shopify, load_event("shopify_orders_paid.json"), lambda_context)

    assert (status, body["status"]) == (200, "queued")
    [message] = drain_queue(sqs, aws_stack.ref("CompletionQueue"))
    assert set(message) == CONTRACT_FIELDS
    assert message["v"] == 1
    assert message["kind"] == "order.paid"
    assert message["platform"] == "shopify"
    assert message["shop"] == "fanfare-demo.myshopify.com"
    assert message["orderId"] == "820982911946154508"
    assert message["deliveryId"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert message["eventId"] == "evt-b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert message["triggeredAt"] == "2026-11-27T15:00:05.123456Z"
    assert message["amount"] == "199.00"
    assert message["currency"] == "USD"
    assert message["admissions"] == [
        {
            "distributionId": "queue_01HXYZ123456789",
            "distributionType": "queue",
            "consumerId": "cons_01HXYZ123456789",
        }
    ]


def test_two_admissions_travel_in_one_message(
    shopify: ModuleType, aws_stack: ProvisionedStack, sqs: Any, lambda_context: Any
) -> None:
    invoke(shopify, load_event("shopify_orders_paid_two_admissions.json"), lambda_context)
    [message] = drain_queue(sqs, aws_stack.ref("CompletionQueue"))
    assert [a["distributionType"] for a in message["admissions"]] == ["queue", "draw"]


@pytest.mark.parametrize(
    ("event", "kind"),
    [("shopify_orders_cancelled.json", "order.cancelled"), ("shopify_refunds_create.json", "order.refunded")],
)
def test_shopify_cancellations_and_refunds_become_order_events(
    shopify: ModuleType, aws_stack: ProvisionedStack, sqs: Any, lambda_context: Any, event: str, kind: str
) -> None:
    status, _ = invoke(shopify, load_event(event), lambda_context)
    assert status == 200
    assert [m["kind"] for m in drain_queue(sqs, aws_stack.ref("CompletionQueue"))] == [kind]


def test_forged_shopify_webhook_is_401_and_queue_stays_empty(
    shopify: ModuleType,
    aws_stack: ProvisionedStack,
    sqs: Any,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = load_event("shopify_orders_paid_forged.json")
    status, body = invoke(shopify, event, lambda_context)

    assert (status, body) == (401, {"status": "unauthorized", "detail": "invalid signature"})
    assert queue_depth(sqs, aws_stack.ref("CompletionQueue")) == 0
    logs = capsys.readouterr().out
    # Nothing of the body is logged for a rejected request.
    assert "webhook rejected" in logs
    assert "cons_01HXYZ123456789" not in logs
    assert "820982911946154508" not in logs


def test_base64_encoded_body_is_verified_over_the_decoded_bytes(
    shopify: ModuleType, aws_stack: ProvisionedStack, sqs: Any, lambda_context: Any
) -> None:
    event = load_event("shopify_orders_paid.json")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    status, _ = invoke(shopify, event, lambda_context)
    assert status == 200
    assert len(drain_queue(sqs, aws_stack.ref("CompletionQueue"))) == 1


def test_rotation_secret_list_accepts_old_and_new(
    shopify: ModuleType, aws_stack: ProvisionedStack, moto_server: MotoServer, sqs: Any, lambda_context: Any
) -> None:
    moto_server.client("secretsmanager").put_secret_value(
        SecretId=aws_stack.ref("ShopifyWebhookSecret"), SecretString=json.dumps(["brand-new", "retiring"])
    )
    for secret in ("brand-new", "retiring"):
        body = to_body(shopify_order(SampleOrder()))
        event = build_http_api_event(
            "POST", "/webhooks/shopify", "", shopify_headers("orders/paid", body, secret), body, "127.0.0.1"
        )
        # The container read the old value at its first request; a mismatch re-reads it (rate-limited).
        shopify.endpoint._secrets._last_refresh = float("-inf")
        status, _ = invoke(shopify, event, lambda_context)
        assert status == 200, secret
    assert len(drain_queue(sqs, aws_stack.ref("CompletionQueue"))) == 2


def test_sqs_failure_answers_503_and_is_not_acknowledged(
    load_function: Callable[..., ModuleType],
    aws_stack: ProvisionedStack,
    lambda_context: Any,
    moto_server: MotoServer,
) -> None:
    # Given a function whose queue does not exist (a real SQS error from moto: QueueDoesNotExist)
    missing = f"{moto_server.endpoint_url}/123456789012/no-such-queue"
    shopify = load_function("ShopifyWebhookFunction", COMPLETION_QUEUE_URL=missing)
    # When a valid webhook arrives
    status, body = invoke(shopify, load_event("shopify_orders_paid.json"), lambda_context)
    # Then the platform is told to retry
    assert (status, body["status"]) == (503, "queue_unavailable")


def test_secrets_manager_failure_answers_503(
    load_function: Callable[..., ModuleType], lambda_context: Any
) -> None:
    shopify = load_function("ShopifyWebhookFunction", SHOPIFY_WEBHOOK_SECRET_ARN="no-such-secret")
    status, body = invoke(shopify, load_event("shopify_orders_paid.json"), lambda_context)
    assert (status, body["status"]) == (503, "secrets_unavailable")


def test_malformed_signed_body_is_200_counted_and_not_queued(
    shopify: ModuleType,
    aws_stack: ProvisionedStack,
    sqs: Any,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = b'{"id": 1, "total_price": '
    headers = shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET)
    event = build_http_api_event("POST", "/webhooks/shopify", "", headers, body, "127.0.0.1")
    status, response = invoke(shopify, event, lambda_context)
    assert (status, response["status"]) == (200, "malformed")
    assert queue_depth(sqs, aws_stack.ref("CompletionQueue")) == 0
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert (line["level"], line["outcome"], line["Webhooks"], line["WebhookDataProblems"]) == (
        "ERROR",
        "malformed",
        1,
        1,
    )
    # What an operator needs to find the delivery in Shopify's admin (the signature proved Shopify sent it).
    assert line["delivery_id"] == headers["X-Shopify-Webhook-Id"]


def test_one_mebibyte_webhook_is_queued(
    shopify: ModuleType, aws_stack: ProvisionedStack, sqs: Any, lambda_context: Any
) -> None:
    payload = shopify_order(SampleOrder())
    payload["note"] = "n" * (1024 * 1024)
    body = to_body(payload)
    event = build_http_api_event(
        "POST",
        "/webhooks/shopify",
        "",
        shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET),
        body,
        "127.0.0.1",
    )
    status, _ = invoke(shopify, event, lambda_context)
    assert status == 200
    assert len(drain_queue(sqs, aws_stack.ref("CompletionQueue"))) == 1


def test_woocommerce_paid_and_cancelled_are_queued(
    woocommerce: ModuleType, aws_stack: ProvisionedStack, sqs: Any, lambda_context: Any
) -> None:
    for name in ("woocommerce_order_paid.json", "woocommerce_order_cancelled.json"):
        status, _ = invoke(woocommerce, load_event(name), lambda_context)
        assert status == 200
    messages = drain_queue(sqs, aws_stack.ref("CompletionQueue"))
    assert sorted(m["kind"] for m in messages) == ["order.cancelled", "order.paid"]
    assert {m["shop"] for m in messages} == {"shop.example.com"}


def test_woocommerce_ping_is_exactly_200_and_queues_nothing(
    woocommerce: ModuleType, aws_stack: ProvisionedStack, sqs: Any, lambda_context: Any
) -> None:
    event = load_event("woocommerce_ping.json")
    assert event["isBase64Encoded"] is True  # API Gateway base64-encodes form posts
    status, _ = invoke(woocommerce, event, lambda_context)
    assert status == 200
    assert queue_depth(sqs, aws_stack.ref("CompletionQueue")) == 0


def test_no_secret_value_appears_in_logs_or_responses(
    shopify: ModuleType,
    woocommerce: ModuleType,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    responses = []
    for module, name in [
        (shopify, "shopify_orders_paid.json"),
        (shopify, "shopify_orders_paid_forged.json"),
        (woocommerce, "woocommerce_order_paid.json"),
        (woocommerce, "woocommerce_ping.json"),
    ]:
        responses.append(json.dumps(module.lambda_handler(load_event(name), lambda_context)))
    output = capsys.readouterr().out + "".join(responses)
    assert "webhook handled" in output  # the capture works, so the absence below means something
    assert DEFAULT_SHOPIFY_WEBHOOK_SECRET not in output
    assert DEFAULT_WC_WEBHOOK_SECRET not in output
    assert "x-shopify-hmac-sha256" not in output.lower()


def test_each_request_writes_one_line_that_is_both_the_log_and_the_metrics(
    shopify: ModuleType, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    invoke(shopify, load_event("shopify_orders_paid.json"), lambda_context)
    invoke(shopify, load_event("shopify_orders_paid_forged.json"), lambda_context)
    lines = capsys.readouterr().out.splitlines()

    assert len(lines) == 2
    assert all(line.startswith('{"_aws"') for line in lines)  # how the local runtime finds EMF lines
    queued, rejected = (json.loads(line) for line in lines)
    assert (queued["level"], queued["message"], queued["outcome"]) == ("INFO", "webhook handled", "queued")
    assert (queued["status_code"], queued["order_id"], queued["admissions"]) == (200, "820982911946154508", 1)
    assert queued["delivery_id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert queued["event_id"] == "evt-b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert queued["function_request_id"] == lambda_context.aws_request_id
    assert queued["cold_start"] is True
    assert rejected["cold_start"] is False
    assert queued["timestamp"].endswith("Z")
    assert "T" in queued["timestamp"]
    assert "delivery_id" not in rejected  # an unsigned request's headers are anyone's words
    assert (rejected["level"], rejected["outcome"], rejected["reason"]) == (
        "WARNING",
        "unauthorized",
        "invalid signature",
    )
    # The metrics CloudWatch (and the local alarm evaluator) reads out of the same lines.
    store = MetricStore()
    for line in lines:
        store.record_emf(line)
    assert set(store._points) == {
        (
            "FanfareSync",
            "Webhooks",
            frozenset({("service", "fanfare-sync"), ("platform", "shopify"), ("outcome", o)}),
        )
        for o in ("queued", "unauthorized")
    } | {
        (
            "FanfareSync",
            "ColdStart",
            frozenset({("service", "fanfare-sync"), ("function_name", "test-function")}),
        )
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "outcome"),
    [("GET", "/webhooks/shopify", 405, "method_not_allowed"), ("POST", "/webhooks/other", 404, "not_found")],
)
def test_only_post_on_the_declared_route_is_served(
    shopify: ModuleType,
    aws_stack: ProvisionedStack,
    sqs: Any,
    lambda_context: Any,
    method: str,
    path: str,
    status: int,
    outcome: str,
) -> None:
    event = load_event("shopify_orders_paid.json")
    event["requestContext"]["http"].update(method=method, path=path)
    response = shopify.lambda_handler(event, lambda_context)
    assert (response["statusCode"], json.loads(response["body"])) == (status, {"status": outcome})
    assert response["headers"].get("Allow") == ("POST" if status == 405 else None)
    assert queue_depth(sqs, aws_stack.ref("CompletionQueue")) == 0


def test_unexpected_error_is_500_with_the_trace_logged_never_answered(
    shopify: ModuleType,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def bug(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug in the extraction")

    monkeypatch.setattr(shopify.endpoint, "platform", shopify.endpoint.platform._replace(extract=bug))
    response = shopify.lambda_handler(load_event("shopify_orders_paid.json"), lambda_context)

    assert (response["statusCode"], json.loads(response["body"])) == (500, {"status": "error"})
    assert "Traceback" not in json.dumps(response)
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (line["level"], line["outcome"], line["error_type"]) == ("ERROR", "error", "RuntimeError")
    assert "a bug in the extraction" in line["exception"]
    assert "Traceback" in line["exception"]
    assert line["Webhooks"] == 1


def test_the_webhook_functions_import_neither_boto3_nor_pydantic_nor_powertools(
    aws_stack: ProvisionedStack, template: dict[str, Any]
) -> None:
    # What keeps their cold start near a bare boto3 client's: see README "Webhook ingest".
    specs = {spec.logical_id: spec for spec in function_specs(template)}
    for name in ("ShopifyWebhookFunction", "WooCommerceWebhookFunction"):
        spec = specs[name]
        environment = {**os.environ, **{k: str(v) for k, v in aws_stack.resolve(spec.environment).items()}}
        paths = [str(spec.module_path.parent), str(LAYER_PATH)]
        probe = (
            f"import sys; sys.path[:0] = {paths!r}; import app; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydantic', 'aws_lambda_powertools', 'boto3'}))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]", name


def test_incomplete_fanfare_data_is_200_ignored_and_logged_as_an_error(
    shopify: ModuleType, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = shopify_order(SampleOrder(admissions=()))
    payload["note_attributes"] = [{"name": "fanfare_distribution_id", "value": "queue_01"}]
    body = to_body(payload)
    headers = shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET)
    event = build_http_api_event("POST", "/webhooks/shopify", "", headers, body, "127.0.0.1")
    capsys.readouterr()
    status, response = invoke(shopify, event, lambda_context)
    assert (status, response) == (200, {"status": "ignored", "detail": "incomplete_fanfare_data"})
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (line["level"], line["outcome"], line["reason"]) == (
        "ERROR",
        "incomplete_fanfare_data",
        "incomplete_fanfare_data",
    )
    assert (line["Webhooks"], line["WebhookDataProblems"]) == (1, 1)

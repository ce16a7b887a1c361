"""`make run`'s stack, driven over HTTP: moto server, template resources, worker processes, the gateway,
the queue poller and the Fanfare sandbox — webhook in, completion out."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fanfare_sync.adapters.orders_table import OrdersTable
from fanfare_sync.models.orders import OrderKey
from fanfare_sync_cli.local.stack import (
    DEFAULT_SHOPIFY_WEBHOOK_SECRET,
    DEFAULT_WC_WEBHOOK_SECRET,
    LocalSettings,
    LocalStack,
)
from fanfare_sync_cli.samples import (
    SampleAdmission,
    SampleOrder,
    shopify_headers,
    shopify_order,
    to_body,
    woocommerce_headers,
    woocommerce_order,
    woocommerce_ping,
)
from fanfare_sync_cli.sandbox import RecordedCompletion

pytestmark = pytest.mark.slow
_order_ids = itertools.count(5001)
SHOPIFY_SHOP = "fanfare-demo.myshopify.com"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(LocalSettings(port=0, state_dir=None, workers_per_function=1)) as running:
        yield running


def new_order(**overrides: Any) -> SampleOrder:
    """Each order its own admission: the same admission is (rightly) completed only once."""
    order_id = next(_order_ids)
    admission = SampleAdmission(f"queue_{order_id}", "queue", f"cons_{order_id}")
    return SampleOrder(order_id=order_id, admissions=(admission,), **overrides)


def post(stack: LocalStack, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(stack.url(path), headers=headers, content=body, timeout=30)


def completions_for(stack: LocalStack, order: SampleOrder) -> list[RecordedCompletion]:
    assert stack.sandbox is not None
    return [
        c
        for c in stack.sandbox.completions()
        if c["metadata"] and c["metadata"]["orderId"] == str(order.order_id)
    ]


def wait_for_completion(stack: LocalStack, order: SampleOrder) -> RecordedCompletion:
    deadline = time.monotonic() + 30
    while not (found := completions_for(stack, order)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, f"order {order.order_id} was not completed at the sandbox"
    [completion] = found
    return completion


def orders_table(stack: LocalStack) -> OrdersTable:
    assert stack.resources is not None
    return OrdersTable(stack.resources.ref("OrdersTable"), stack.moto.client("dynamodb"))


def test_signed_shopify_order_is_completed_once_at_the_sandbox(stack: LocalStack) -> None:
    order = new_order()
    body = to_body(shopify_order(order))
    response = post(
        stack, "/webhooks/shopify", shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET), body
    )

    assert response.status_code == 200
    assert response.json() == {"status": "queued", "detail": "queued"}
    completion = wait_for_completion(stack, order)
    assert (completion["distribution_type"], completion["consumer_id"]) == ("queue", f"cons_{order.order_id}")
    assert completion["metadata"] is not None
    assert completion["metadata"]["orderAmount"] == "199.00"
    # The sandbox answers before the consumer records the order; wait for the record, not the clock.
    key = OrderKey("shopify", SHOPIFY_SHOP, str(order.order_id))
    deadline = time.monotonic() + 30
    while True:
        record, history = orders_table(stack).order_with_history(key)
        events = [e["event"] for e in history]
        if record is not None and record.get("syncStatus") == "synced":
            break
        assert time.monotonic() < deadline, f"order {order.order_id} was never recorded as synced: {record}"
        time.sleep(0.05)
    assert record is not None
    assert record["admissions"][0]["completion"]["statusCode"] == 200
    assert events == []  # nothing went wrong: the order item says it all


def test_forged_shopify_order_is_401_and_never_reaches_queue_or_fanfare(stack: LocalStack) -> None:
    forged = new_order()
    body = to_body(shopify_order(forged))
    response = post(stack, "/webhooks/shopify", shopify_headers("orders/paid", body, "guessed-secret"), body)
    assert response.status_code == 401
    # A genuine order sent after it is processed to the end, so the forged one had every chance to be.
    genuine = new_order()
    genuine_body = to_body(shopify_order(genuine))
    post(
        stack,
        "/webhooks/shopify",
        shopify_headers("orders/paid", genuine_body, DEFAULT_SHOPIFY_WEBHOOK_SECRET),
        genuine_body,
    )
    wait_for_completion(stack, genuine)
    assert completions_for(stack, forged) == []
    key = OrderKey("shopify", SHOPIFY_SHOP, str(forged.order_id))
    assert orders_table(stack).order_with_history(key) == (None, [])


def test_woocommerce_creation_ping_gets_exactly_200(stack: LocalStack) -> None:
    headers, body = woocommerce_ping(webhook_id=12)
    response = post(stack, "/webhooks/woocommerce", headers, body)
    assert response.status_code == 200
    assert response.json()["status"] == "ping"


def test_signed_woocommerce_order_is_completed(stack: LocalStack) -> None:
    order = new_order()
    body = to_body(woocommerce_order(order, status="completed"))
    response = post(
        stack,
        "/webhooks/woocommerce",
        woocommerce_headers("order.updated", body, DEFAULT_WC_WEBHOOK_SECRET),
        body,
    )
    assert response.status_code == 200
    metadata = wait_for_completion(stack, order)["metadata"]
    assert metadata is not None
    assert {k: v for k, v in metadata.items() if k != "completedAt"} == {
        "orderId": str(order.order_id),
        "orderAmount": "199.00",
        "platform": "woocommerce",
        "itemCount": 1,
        "currency": "USD",
    }


def test_large_body_passes_through_the_gateway_intact(stack: LocalStack) -> None:
    order = new_order()
    payload = shopify_order(order)
    payload["note"] = "é" * (512 * 1024)  # 1 MiB of UTF-8: the signature must survive the event round trip
    body = to_body(payload)
    response = post(
        stack, "/webhooks/shopify", shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET), body
    )
    assert response.status_code == 200
    wait_for_completion(stack, order)


@pytest.mark.parametrize(("method", "path"), [("POST", "/webhooks/unknown"), ("GET", "/webhooks/shopify")])
def test_routes_not_in_the_template_are_404(stack: LocalStack, method: str, path: str) -> None:
    response = httpx.request(method, stack.url(path), timeout=10)
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_resources_come_from_the_template(stack: LocalStack) -> None:
    assert stack.resources is not None
    sqs = stack.moto.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.resources.ref("CompletionQueue"), AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 6
    assert redrive["deadLetterTargetArn"].endswith("CompletionDLQ")
    assert attributes["VisibilityTimeout"] == "180"
    secrets = stack.moto.client("secretsmanager")
    stored = secrets.get_secret_value(SecretId=stack.resources.ref("ShopifyWebhookSecret"))["SecretString"]
    assert stored == DEFAULT_SHOPIFY_WEBHOOK_SECRET
    tables = stack.moto.client("dynamodb").list_tables()["TableNames"]
    assert {stack.resources.ref("OrdersTable"), stack.resources.ref("IdempotencyTable")} <= set(tables)


def test_stale_order_raises_the_alarm_and_heals_when_fanfare_returns(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given a local stack whose monitor runs every second and calls an order stale after two
    settings = LocalSettings(
        port=0, state_dir=None, workers_per_function=1, schedule_every_seconds=1, stale_after_seconds=2
    )
    with LocalStack(settings) as stack:
        assert stack.sandbox is not None
        assert stack.alarms is not None
        # When Fanfare fails and an order arrives
        stack.sandbox.set_faults(error_rate=1.0)
        order = new_order()
        body = to_body(shopify_order(order))
        headers = shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET)
        assert post(stack, "/webhooks/shopify", headers, body).status_code == 200
        # Then the stale-order alarm fires
        deadline = time.monotonic() + 30
        while "StaleOrdersAlarm" not in stack.alarms.firing():
            assert time.monotonic() < deadline, "the stale-order alarm never fired"
            time.sleep(0.1)
        # And when Fanfare is back, the order's next retry completes it and the alarm clears
        stack.sandbox.reset()
        wait_for_completion(stack, order)
        deadline = time.monotonic() + 60
        while "StaleOrdersAlarm" in stack.alarms.firing():
            assert time.monotonic() < deadline, "the stale-order alarm never cleared"
            time.sleep(0.1)
    printed = capfd.readouterr().out
    assert "[alarm] StaleOrdersAlarm is ALARM: StaleOrders Maximum 1 >= 1" in printed
    assert "[alarm] StaleOrdersAlarm is OK again" in printed

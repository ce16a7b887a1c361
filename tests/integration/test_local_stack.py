"""`make run`'s stack, driven over HTTP: moto server, template resources, worker processes, the gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fanfare_sync_cli.local.stack import (
    DEFAULT_SHOPIFY_WEBHOOK_SECRET,
    DEFAULT_WC_WEBHOOK_SECRET,
    LocalSettings,
    LocalStack,
)
from fanfare_sync_cli.samples import (
    SampleOrder,
    shopify_headers,
    shopify_order,
    to_body,
    woocommerce_headers,
    woocommerce_order,
    woocommerce_ping,
)
from tests.conftest import drain_queue

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(LocalSettings(port=0, state_dir=None, workers_per_function=1)) as running:
        yield running


@pytest.fixture
def completion_queue(stack: LocalStack) -> tuple[Any, str]:
    sqs = stack.moto.client("sqs")
    assert stack.resources is not None
    url = stack.resources.ref("CompletionQueue")
    drain_queue(sqs, url)
    return sqs, url


def post(stack: LocalStack, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(stack.url(path), headers=headers, content=body, timeout=30)


def test_signed_shopify_order_is_acknowledged_and_queued_once(
    stack: LocalStack, completion_queue: tuple[Any, str]
) -> None:
    body = to_body(shopify_order(SampleOrder(order_id=1001)))
    response = post(
        stack, "/webhooks/shopify", shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET), body
    )

    assert response.status_code == 200
    assert response.json() == {"status": "queued", "detail": "queued"}
    [message] = drain_queue(*completion_queue)
    assert (message["orderId"], message["kind"], message["amount"]) == ("1001", "order.paid", "199.00")
    assert message["admissions"][0]["consumerId"] == "cons_01HXYZ123456789"


def test_forged_shopify_order_is_401_and_the_queue_is_unchanged(
    stack: LocalStack, completion_queue: tuple[Any, str]
) -> None:
    body = to_body(shopify_order(SampleOrder(order_id=1002)))
    response = post(stack, "/webhooks/shopify", shopify_headers("orders/paid", body, "guessed-secret"), body)

    assert response.status_code == 401
    assert drain_queue(*completion_queue) == []


def test_woocommerce_creation_ping_gets_exactly_200(
    stack: LocalStack, completion_queue: tuple[Any, str]
) -> None:
    headers, body = woocommerce_ping(webhook_id=12)
    response = post(stack, "/webhooks/woocommerce", headers, body)
    assert response.status_code == 200
    assert drain_queue(*completion_queue) == []


def test_signed_woocommerce_order_is_queued(stack: LocalStack, completion_queue: tuple[Any, str]) -> None:
    body = to_body(woocommerce_order(SampleOrder(order_id=77), status="completed"))
    headers = woocommerce_headers("order.updated", body, DEFAULT_WC_WEBHOOK_SECRET)
    response = post(stack, "/webhooks/woocommerce", headers, body)
    assert response.status_code == 200
    assert [m["orderId"] for m in drain_queue(*completion_queue)] == ["77"]


def test_large_body_passes_through_the_gateway_intact(
    stack: LocalStack, completion_queue: tuple[Any, str]
) -> None:
    payload = shopify_order(SampleOrder(order_id=1003))
    payload["note"] = "é" * (512 * 1024)  # 1 MiB of UTF-8: the signature must survive the event round trip
    body = to_body(payload)
    response = post(
        stack, "/webhooks/shopify", shopify_headers("orders/paid", body, DEFAULT_SHOPIFY_WEBHOOK_SECRET), body
    )
    assert response.status_code == 200
    assert len(drain_queue(*completion_queue)) == 1


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

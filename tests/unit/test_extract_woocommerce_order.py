from __future__ import annotations

from typing import Any

import pytest

from fanfare_sync.logic.extract_woocommerce_order import extract_woocommerce_order, is_woocommerce_ping
from fanfare_sync.logic.extraction import Ignored, IgnoreReason, MalformedPayloadError
from fanfare_sync.models.queue_message import OrderEventKind, OrderMessage, Platform
from fanfare_sync_cli.samples import SampleAdmission, SampleOrder, woocommerce_order

RECEIVED_AT = "2026-11-27T15:00:06.000Z"


def headers(topic: str = "order.updated") -> dict[str, str]:
    return {
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-source": "https://Shop.Example.com/",
        "x-wc-webhook-id": "7",
        "x-wc-webhook-delivery-id": "8f1e3c0b",
        "x-wc-webhook-signature": "present",
    }


def extract(payload: dict[str, Any], topic: str = "order.updated") -> OrderMessage:
    result = extract_woocommerce_order(headers(topic), payload, RECEIVED_AT)
    assert isinstance(result, OrderMessage), result
    return result


@pytest.mark.parametrize("status", ["processing", "completed"])
@pytest.mark.parametrize("topic", ["order.created", "order.updated"])
def test_paid_statuses_become_completion_messages(status: str, topic: str) -> None:
    message = extract(woocommerce_order(SampleOrder(order_id=1234, total="59.90"), status=status), topic)
    assert message.kind is OrderEventKind.PAID
    assert message.platform is Platform.WOOCOMMERCE
    assert message.shop == "shop.example.com"
    assert message.orderId == "1234"
    assert (message.amount, message.currency) == ("59.90", "USD")
    assert message.deliveryId == "8f1e3c0b"
    assert message.eventId == f"7:1234:{status}:2026-11-27T15:00:05"
    assert [a.distributionId for a in message.admissions] == ["queue_01HXYZ123456789"]


@pytest.mark.parametrize("status", ["pending", "on-hold", "failed", "draft", None, 7])
def test_unpaid_statuses_are_ignored(status: Any) -> None:
    payload = woocommerce_order(SampleOrder(order_id=9), status="pending")
    payload["status"] = status
    assert extract_woocommerce_order(headers(), payload, RECEIVED_AT) == Ignored(IgnoreReason.NOT_PAID, "9")


@pytest.mark.parametrize(
    ("status", "kind"), [("cancelled", OrderEventKind.CANCELLED), ("refunded", OrderEventKind.REFUNDED)]
)
def test_cancelled_and_refunded_become_order_events(status: str, kind: OrderEventKind) -> None:
    assert extract(woocommerce_order(SampleOrder(), status=status)).kind is kind


def test_line_item_meta_carries_several_admissions() -> None:
    order = SampleOrder(
        per_line_item=True,
        admissions=(SampleAdmission("q1", "queue", "c1"), SampleAdmission("a1", "auction", "c1")),
    )
    message = extract(woocommerce_order(order))
    assert [(a.distributionId, a.distributionType) for a in message.admissions] == [
        ("q1", "queue"),
        ("a1", "auction"),
    ]


def test_order_without_fanfare_meta_is_not_ours() -> None:
    result = extract_woocommerce_order(
        headers(), woocommerce_order(SampleOrder(order_id=5, admissions=())), RECEIVED_AT
    )
    assert result == Ignored(IgnoreReason.NOT_FANFARE, "5")


@pytest.mark.parametrize(
    "topic", ["order.deleted", "product.updated", "action.woocommerce_order_status_completed", ""]
)
def test_other_topics_are_ignored(topic: str) -> None:
    result = extract_woocommerce_order(headers(topic), woocommerce_order(SampleOrder()), RECEIVED_AT)
    assert result == Ignored(IgnoreReason.TOPIC_NOT_HANDLED)


def test_missing_source_header_is_malformed() -> None:
    without_source = {k: v for k, v in headers().items() if k != "x-wc-webhook-source"}
    with pytest.raises(MalformedPayloadError):
        extract_woocommerce_order(without_source, woocommerce_order(SampleOrder()), RECEIVED_AT)


@pytest.mark.parametrize(
    ("request_headers", "body", "is_ping"),
    [
        ({}, b"webhook_id=42", True),
        ({}, b"webhook_id=42\n", True),
        ({"x-wc-webhook-signature": "abc"}, b"webhook_id=42", False),
        ({}, b"webhook_id=", False),
        ({}, b"webhook_id=42&x=1", False),
        ({}, b'{"id": 1}', False),
        ({}, b"", False),
    ],
)
def test_ping_is_only_the_unsigned_creation_form_post(
    request_headers: dict[str, str], body: bytes, is_ping: bool
) -> None:
    assert is_woocommerce_ping(request_headers, body) is is_ping

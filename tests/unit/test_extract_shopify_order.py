from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from fanfare_sync.logic.extract_shopify_order import extract_shopify_order
from fanfare_sync.logic.extraction import Ignored, IgnoreReason, MalformedPayloadError
from fanfare_sync.logic.find_admissions import MAX_ADMISSIONS_PER_ORDER
from fanfare_sync.models.queue_message import Admission, OrderEventKind, OrderMessage, Platform
from fanfare_sync_cli.samples import SampleAdmission, SampleOrder, shopify_order, shopify_refund

RECEIVED_AT = "2026-11-27T15:00:06.000Z"


def headers(topic: str = "orders/paid") -> dict[str, str]:
    return {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": "Fanfare-Demo.myshopify.com",
        "x-shopify-webhook-id": "wh-1",
        "x-shopify-event-id": "evt-1",
        "x-shopify-triggered-at": "2026-11-27T15:00:05Z",
    }


def as_received(payload: dict[str, Any]) -> Any:
    # What the ingest path hands over: JSON parsed with Decimal for non-integers.
    return json.loads(json.dumps(payload), parse_float=Decimal)


def extract(payload: dict[str, Any], topic: str = "orders/paid") -> OrderMessage:
    result = extract_shopify_order(headers(topic), as_received(payload), RECEIVED_AT)
    assert isinstance(result, OrderMessage), result
    return result


def test_paid_order_with_note_attributes_becomes_one_completion_message() -> None:
    message = extract(shopify_order(SampleOrder(order_id=4058476875, total="2250.00", currency="EUR")))

    assert message.kind is OrderEventKind.PAID
    assert message.platform is Platform.SHOPIFY
    assert message.shop == "fanfare-demo.myshopify.com"
    assert message.orderId == "4058476875"
    assert message.admissions == (
        Admission(
            distributionId="queue_01HXYZ123456789",
            distributionType="queue",
            consumerId="cons_01HXYZ123456789",
        ),
    )
    assert (message.amount, message.currency) == ("2250.00", "EUR")
    assert message.itemCount == 1
    assert (message.deliveryId, message.eventId, message.triggeredAt) == (
        "wh-1",
        "evt-1",
        "2026-11-27T15:00:05Z",
    )
    assert message.receivedAt == RECEIVED_AT
    assert message.topic == "orders/paid"


def test_line_item_properties_carry_several_admissions() -> None:
    order = SampleOrder(
        per_line_item=True,
        admissions=(
            SampleAdmission("q1", "queue", "c1"),
            SampleAdmission("d1", "DRAW", "c1"),
            SampleAdmission("t1", "timed_release", "c1"),
        ),
    )
    message = extract(shopify_order(order))
    assert [(a.distributionId, a.distributionType) for a in message.admissions] == [
        ("q1", "queue"),
        ("d1", "draw"),
        ("t1", "timed_release"),
    ]
    assert message.itemCount == 4  # three admission lines and one plain line


def test_same_admission_on_order_and_line_is_completed_once() -> None:
    payload = shopify_order(SampleOrder())
    payload["line_items"][0]["properties"] = [
        {"name": "_fanfare_distribution_id", "value": "queue_01HXYZ123456789"},
        {"name": "_fanfare_distribution_type", "value": "queue"},
        {"name": "_fanfare_consumer_id", "value": "cons_01HXYZ123456789"},
    ]
    assert len(extract(payload).admissions) == 1


def test_line_item_inherits_consumer_from_order_level() -> None:
    payload = shopify_order(SampleOrder())
    payload["line_items"][0]["properties"] = [
        {"name": "_fanfare_distribution_id", "value": "auction_9"},
        {"name": "_fanfare_distribution_type", "value": "auction"},
    ]
    ids = {(a.distributionId, a.consumerId) for a in extract(payload).admissions}
    assert ids == {("queue_01HXYZ123456789", "cons_01HXYZ123456789"), ("auction_9", "cons_01HXYZ123456789")}


def test_order_without_fanfare_data_is_not_ours() -> None:
    result = extract_shopify_order(
        headers(), as_received(shopify_order(SampleOrder(admissions=()))), RECEIVED_AT
    )
    assert result == Ignored(IgnoreReason.NOT_FANFARE, "820982911946154508")


def test_partial_fanfare_data_is_flagged_not_queued() -> None:
    payload = shopify_order(SampleOrder(admissions=()))
    payload["note_attributes"] = [{"name": "fanfare_distribution_id", "value": "q1"}]
    result = extract_shopify_order(headers(), as_received(payload), RECEIVED_AT)
    assert result == Ignored(IgnoreReason.INCOMPLETE_FANFARE_DATA, "820982911946154508")


def test_cancelled_order_becomes_an_order_event() -> None:
    message = extract(shopify_order(SampleOrder(), cancelled=True), topic="orders/cancelled")
    assert message.kind is OrderEventKind.CANCELLED
    assert len(message.admissions) == 1


def test_refund_names_its_order_and_sums_successful_refund_transactions() -> None:
    refund = shopify_refund(SampleOrder(order_id=55), amount="10.50")
    refund["transactions"] += [
        {"kind": "refund", "status": "success", "amount": "4.50", "currency": "USD"},
        {"kind": "refund", "status": "failure", "amount": "99.00", "currency": "USD"},
        {"kind": "sale", "status": "success", "amount": "1.00", "currency": "USD"},
    ]
    message = extract(refund, topic="refunds/create")
    assert message.kind is OrderEventKind.REFUNDED
    assert (message.orderId, message.amount, message.currency) == ("55", "15.00", "USD")
    assert message.admissions == ()


@pytest.mark.parametrize("topic", ["orders/create", "orders/updated", "customers/redact", "shop/redact", ""])
def test_other_topics_are_ignored(topic: str) -> None:
    result = extract_shopify_order(headers(topic), as_received(shopify_order(SampleOrder())), RECEIVED_AT)
    assert result == Ignored(IgnoreReason.TOPIC_NOT_HANDLED)


@pytest.mark.parametrize(
    "payload",
    [[], "text", 3, None, {"total_price": "1.00"}, {"id": True}, {"id": ""}, {"id": {"nested": 1}}],
)
def test_foreign_payloads_are_malformed(payload: Any) -> None:
    with pytest.raises(MalformedPayloadError):
        extract_shopify_order(headers(), payload, RECEIVED_AT)


def test_missing_shop_domain_is_malformed() -> None:
    without_shop = {k: v for k, v in headers().items() if k != "x-shopify-shop-domain"}
    with pytest.raises(MalformedPayloadError):
        extract_shopify_order(without_shop, as_received(shopify_order(SampleOrder())), RECEIVED_AT)


def test_money_is_kept_exact_and_never_a_float() -> None:
    # A JSON number arrives as Decimal (parse_float=Decimal), a string as written; both stay exact.
    payload = as_received(shopify_order(SampleOrder()))
    payload["total_price"] = Decimal("0.10")
    message = extract_shopify_order(headers(), payload, RECEIVED_AT)
    assert isinstance(message, OrderMessage)
    assert message.amount == "0.10"
    payload["total_price"] = "NaN"
    message = extract_shopify_order(headers(), payload, RECEIVED_AT)
    assert isinstance(message, OrderMessage)
    assert message.amount is None


def test_absurd_number_of_admissions_is_flagged_not_queued() -> None:
    order = SampleOrder(
        per_line_item=True,
        extra_line_items=0,
        admissions=tuple(SampleAdmission(f"q{i}", "queue", "c") for i in range(MAX_ADMISSIONS_PER_ORDER + 1)),
    )
    result = extract_shopify_order(headers(), as_received(shopify_order(order)), RECEIVED_AT)
    assert result == Ignored(IgnoreReason.INCOMPLETE_FANFARE_DATA, "820982911946154508")


def test_non_string_fanfare_values_are_read_or_ignored_safely() -> None:
    payload = shopify_order(SampleOrder(admissions=()))
    payload["note_attributes"] = [
        {"name": "fanfare_distribution_id", "value": 12345},
        {"name": "fanfare_distribution_type", "value": "queue"},
        {"name": "fanfare_consumer_id", "value": True},
        {"name": None, "value": "x"},
        "not-an-object",
    ]
    result = extract_shopify_order(headers(), as_received(payload), RECEIVED_AT)
    assert result == Ignored(IgnoreReason.INCOMPLETE_FANFARE_DATA, "820982911946154508")

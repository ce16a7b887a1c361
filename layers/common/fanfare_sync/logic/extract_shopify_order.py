"""Turn a verified Shopify webhook into an order event (or a reason to ignore it)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fanfare_sync.logic.extraction import (
    Extraction,
    Ignored,
    IgnoreReason,
    MalformedPayloadError,
    count_line_items,
    decimal_text,
    require_object,
    require_order_id,
    short_text,
)
from fanfare_sync.logic.find_admissions import collect_admissions, read_fanfare_fields
from fanfare_sync.models.queue_message import OrderEventKind, OrderMessage, Platform

SIGNATURE_HEADER = "x-shopify-hmac-sha256"
DELIVERY_ID_HEADER = "x-shopify-webhook-id"

_ORDER_TOPICS = {"orders/paid": OrderEventKind.PAID, "orders/cancelled": OrderEventKind.CANCELLED}
_REFUND_TOPIC = "refunds/create"


def extract_shopify_order(headers: Mapping[str, str], payload: Any, received_at: str) -> Extraction:
    """`headers` are lower-cased. The topic decides the shape of the body: orders, or a Refund resource."""
    topic = headers.get("x-shopify-topic", "").strip().lower()
    if topic not in _ORDER_TOPICS and topic != _REFUND_TOPIC:
        return Ignored(IgnoreReason.TOPIC_NOT_HANDLED)

    body = require_object(payload)
    shop = short_text(headers.get("x-shopify-shop-domain"), 255)
    if shop is None:
        raise MalformedPayloadError("missing X-Shopify-Shop-Domain")
    common: dict[str, Any] = {
        "platform": Platform.SHOPIFY,
        "shop": shop.lower(),
        "topic": topic,
        "deliveryId": short_text(headers.get(DELIVERY_ID_HEADER)),
        "eventId": short_text(headers.get("x-shopify-event-id")),
        "triggeredAt": short_text(headers.get("x-shopify-triggered-at")),
        "receivedAt": received_at,
    }
    if topic == _REFUND_TOPIC:
        return _refund_event(body, common)

    order_id = require_order_id(body.get("id"))
    line_items = body.get("line_items")
    found = collect_admissions(
        read_fanfare_fields(body.get("note_attributes"), "name"),
        (
            read_fanfare_fields(item.get("properties"), "name")
            for item in (line_items if isinstance(line_items, list) else [])
            if isinstance(item, dict)
        ),
    )
    if not found.admissions:
        reason = IgnoreReason.INCOMPLETE_FANFARE_DATA if found.incomplete else IgnoreReason.NOT_FANFARE
        return Ignored(reason, order_id)
    return OrderMessage(
        kind=_ORDER_TOPICS[topic],
        orderId=order_id,
        admissions=found.admissions,
        amount=decimal_text(body.get("total_price")),
        currency=short_text(body.get("currency"), 10),
        itemCount=count_line_items(line_items),
        **common,
    )


def _refund_event(refund: dict[str, Any], common: dict[str, Any]) -> OrderMessage:
    """A Refund resource names its order but carries no note attributes, so it is queued whenever it
    names an order: the consumer records it only against orders it already knows."""
    order_id = require_order_id(refund.get("order_id"), "order_id")
    refund_lines = refund.get("refund_line_items")
    lines = [
        line for line in (refund_lines if isinstance(refund_lines, list) else []) if isinstance(line, dict)
    ]
    found = collect_admissions(
        {},
        (
            read_fanfare_fields(line["line_item"].get("properties"), "name")
            for line in lines
            if isinstance(line.get("line_item"), dict)
        ),
    )
    amount, currency = _refunded_money(refund.get("transactions"))
    return OrderMessage(
        kind=OrderEventKind.REFUNDED,
        orderId=order_id,
        admissions=found.admissions,
        amount=amount,
        currency=currency,
        itemCount=len(lines),
        **common,
    )


def _refunded_money(transactions: Any) -> tuple[str | None, str | None]:
    total = Decimal(0)
    currency: str | None = None
    seen = False
    for txn in transactions if isinstance(transactions, list) else []:
        if (
            not isinstance(txn, dict)
            or txn.get("kind") != "refund"
            or txn.get("status") not in (None, "success")
        ):
            continue
        amount = decimal_text(txn.get("amount"))
        if amount is None:
            continue
        total += Decimal(amount)
        currency = currency or short_text(txn.get("currency"), 10)
        seen = True
    return (format(total, "f") if seen else None), currency

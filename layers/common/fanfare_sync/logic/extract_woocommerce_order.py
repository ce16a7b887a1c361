"""Turn a verified WooCommerce webhook into an order event (or a reason to ignore it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
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

SIGNATURE_HEADER = "x-wc-webhook-signature"
DELIVERY_ID_HEADER = "x-wc-webhook-delivery-id"

_ORDER_TOPICS = frozenset({"order.created", "order.updated"})
# `order.created` fires before payment, so the status, not the topic, says whether the order is paid.
_KIND_BY_STATUS = {
    "processing": OrderEventKind.PAID,
    "completed": OrderEventKind.PAID,
    "cancelled": OrderEventKind.CANCELLED,
    "refunded": OrderEventKind.REFUNDED,
}
_PING_BODY = re.compile(rb"webhook_id=\d{1,20}")


def is_woocommerce_ping(headers: Mapping[str, str], raw_body: bytes) -> bool:
    """The unsigned form post WooCommerce sends when a webhook is saved; it must get exactly 200."""
    return SIGNATURE_HEADER not in headers and _PING_BODY.fullmatch(raw_body.strip()) is not None


def extract_woocommerce_order(headers: Mapping[str, str], payload: Any, received_at: str) -> Extraction:
    topic = headers.get("x-wc-webhook-topic", "").strip().lower()
    if topic not in _ORDER_TOPICS:
        return Ignored(IgnoreReason.TOPIC_NOT_HANDLED)

    body = require_object(payload)
    order_id = require_order_id(body.get("id"))
    status = body.get("status")
    kind = _KIND_BY_STATUS.get(status) if isinstance(status, str) else None
    if kind is None:
        return Ignored(IgnoreReason.NOT_PAID, order_id)

    line_items = body.get("line_items")
    found = collect_admissions(
        read_fanfare_fields(body.get("meta_data"), "key"),
        (
            read_fanfare_fields(item.get("meta_data"), "key")
            for item in (line_items if isinstance(line_items, list) else [])
            if isinstance(item, dict)
        ),
    )
    if not found.admissions:
        reason = IgnoreReason.INCOMPLETE_FANFARE_DATA if found.incomplete else IgnoreReason.NOT_FANFARE
        return Ignored(reason, order_id)

    shop = _shop_from_source(headers.get("x-wc-webhook-source"))
    webhook_id = short_text(headers.get("x-wc-webhook-id"), 20) or "0"
    modified = short_text(body.get("date_modified_gmt"), 40) or ""
    return OrderMessage(
        kind=kind,
        platform=Platform.WOOCOMMERCE,
        shop=shop,
        orderId=order_id,
        topic=topic,
        deliveryId=short_text(headers.get(DELIVERY_ID_HEADER)),
        # WooCommerce's delivery id is only unique per second; this names the event itself.
        eventId=f"{webhook_id}:{order_id}:{status}:{modified}",
        receivedAt=received_at,
        admissions=found.admissions,
        amount=decimal_text(body.get("total")),
        currency=short_text(body.get("currency"), 10),
        itemCount=count_line_items(line_items),
    )


def _shop_from_source(source: str | None) -> str:
    """`X-WC-Webhook-Source` is the site's home URL with a trailing slash; the shop is its host and path."""
    text = short_text(source, 255)
    if text is None:
        raise MalformedPayloadError("missing X-WC-Webhook-Source")
    without_scheme = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text, flags=re.IGNORECASE)
    shop = without_scheme.rstrip("/").lower()
    if not shop:
        raise MalformedPayloadError("empty X-WC-Webhook-Source")
    return shop

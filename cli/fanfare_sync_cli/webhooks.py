"""Build the signed webhook deliveries `fanfare-sync send` posts, on top of the shared samples.

The payloads and headers are samples.py's (the same shapes the tests and events/ use); this module only
adds what an operator varies per send: fresh delivery ids, several admissions, a wrong signature.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from fanfare_sync_cli.samples import (
    SampleAdmission,
    SampleOrder,
    shopify_headers,
    shopify_order,
    shopify_refund,
    to_body,
    woocommerce_headers,
    woocommerce_order,
    woocommerce_ping,
)

SHOPIFY_TOPICS = ("orders/paid", "orders/cancelled", "refunds/create")
WOOCOMMERCE_TOPICS = ("order.created", "order.updated")
# What a shop can send; only processing/completed are paid (README "Webhook contract").
WOOCOMMERCE_STATUSES = ("processing", "completed", "cancelled", "refunded", "on-hold", "pending", "failed")
DISTRIBUTION_TYPES = ("queue", "draw", "auction", "timed_release")
DEFAULT_SHOPIFY_SHOP = "fanfare-demo.myshopify.com"
DEFAULT_WOOCOMMERCE_SHOP = "shop.example.com"
# Signing with a key no one configured gives a signature of the right shape that must not verify.
_FORGED_KEY_SUFFIX = "-forged-by-fanfare-sync-send"


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    summary: str
    delivery_id: str | None


def new_order_id() -> int:
    """Milliseconds since the epoch: a new id per send (one send takes longer than a millisecond), and
    13 digits, as Shopify's order ids have."""
    return time.time_ns() // 1_000_000


def admissions(
    count: int, distribution_type: str, distribution_id: str, consumer_id: str
) -> tuple[SampleAdmission, ...]:
    """`count` distinct admissions of one consumer (one per drop they got into), as line items carry them.

    Each (distribution, consumer) pair is one admission, so the second and later ones get their own
    distribution id: `<id>_2`, `<id>_3`, ...
    """
    return tuple(
        SampleAdmission(
            distribution_id=distribution_id if index == 1 else f"{distribution_id}_{index}",
            distribution_type=distribution_type,
            consumer_id=consumer_id,
        )
        for index in range(1, count + 1)
    )


def signing_key(secret: str, *, forged: bool) -> str:
    return secret + _FORGED_KEY_SUFFIX if forged else secret


def shopify_delivery(
    topic: str, order: SampleOrder, shop: str, secret: str, *, forged: bool = False
) -> Delivery:
    if topic == "refunds/create":
        # A refund names its order and amount only; the consumer records it for orders it knows.
        body = to_body(shopify_refund(order, amount=order.total))
        summary = f"{topic}  order {order.order_id}  shop {shop}  refund {order.total} {order.currency}"
    else:
        body = to_body(shopify_order(order, cancelled=topic == "orders/cancelled"))
        summary = _describe(topic, order, f"shop {shop}")
    webhook_id = str(uuid.uuid4())
    headers = shopify_headers(
        topic, body, signing_key(secret, forged=forged), webhook_id=webhook_id, shop=shop
    )
    return Delivery(headers, body, summary, webhook_id)


def woocommerce_delivery(
    topic: str, status: str, order: SampleOrder, shop: str, secret: str, *, forged: bool = False
) -> Delivery:
    body = to_body(woocommerce_order(order, status=status))
    headers = woocommerce_headers(
        topic, body, signing_key(secret, forged=forged), source=f"https://{shop.strip('/')}/"
    )
    # The sample's delivery id is fixed; a real one is new per delivery (duplicates reuse it on purpose).
    delivery_id = uuid.uuid4().hex
    headers["X-WC-Webhook-Delivery-ID"] = delivery_id
    return Delivery(headers, body, _describe(f"{topic} ({status})", order, f"shop {shop}"), delivery_id)


def woocommerce_ping_delivery(webhook_id: int) -> Delivery:
    headers, body = woocommerce_ping(webhook_id)
    return Delivery(headers, body, f"WooCommerce creation ping (webhook_id={webhook_id}, unsigned)", None)


def order_with(
    order_id: int,
    amount: str,
    currency: str,
    order_admissions: tuple[SampleAdmission, ...],
    *,
    on_line_items: bool,
) -> SampleOrder:
    return replace(
        SampleOrder(),
        order_id=order_id,
        total=amount,
        currency=currency,
        admissions=order_admissions,
        per_line_item=on_line_items,
    )


def _describe(topic: str, order: SampleOrder, where: str) -> str:
    lines = [f"{topic}  order {order.order_id}  {where}  {order.total} {order.currency}"]
    placement = "line item" if order.per_line_item else "order"
    lines += [
        f"admission ({placement}): {a.distribution_type} {a.distribution_id} consumer {a.consumer_id}"
        for a in order.admissions
    ]
    return "\n".join(lines)

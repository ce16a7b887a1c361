"""Realistic Shopify and WooCommerce webhook payloads, signed like the platforms sign them.

One source for the sample events in events/, the tests, `fanfare-sync send` and the benchmarks, so they all
exercise the same shapes (field names and types follow platform-webhooks.md, money as strings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fanfare_sync.logic.verify_signature import compute_signature


@dataclass(frozen=True)
class SampleAdmission:
    distribution_id: str = "queue_01HXYZ123456789"
    distribution_type: str = "queue"
    consumer_id: str = "cons_01HXYZ123456789"


@dataclass(frozen=True)
class SampleOrder:
    order_id: int = 820982911946154508
    total: str = "199.00"
    currency: str = "USD"
    admissions: tuple[SampleAdmission, ...] = (SampleAdmission(),)
    # Where the Fanfare data sits: on the order (note attributes / order meta) or on each line item.
    per_line_item: bool = False
    extra_line_items: int = 1
    notes: dict[str, str] = field(default_factory=dict)


def shopify_order(order: SampleOrder, *, cancelled: bool = False) -> dict[str, Any]:
    note_attributes = [{"name": name, "value": value} for name, value in order.notes.items()]
    line_items = []
    if not order.per_line_item and order.admissions:
        first = order.admissions[0]
        note_attributes += [
            {"name": "fanfare_distribution_id", "value": first.distribution_id},
            {"name": "fanfare_distribution_type", "value": first.distribution_type},
            {"name": "fanfare_consumer_id", "value": first.consumer_id},
        ]
    for index, admission in enumerate(order.admissions if order.per_line_item else ()):
        line_items.append(
            _shopify_line_item(
                index,
                [
                    {"name": "_fanfare_distribution_id", "value": admission.distribution_id},
                    {"name": "_fanfare_distribution_type", "value": admission.distribution_type},
                    {"name": "_fanfare_consumer_id", "value": admission.consumer_id},
                ],
            )
        )
    line_items += [_shopify_line_item(len(line_items) + i, []) for i in range(order.extra_line_items)]
    customer = {
        "id": 115310627314723954,
        "email": "jon@example.com",
        "first_name": "Jon",
        "last_name": "Snow",
        "state": "enabled",
        "verified_email": True,
        "currency": order.currency,
        "created_at": "2026-11-20T10:00:00-05:00",
        "updated_at": "2026-11-27T10:00:00-05:00",
    }
    address = {
        "first_name": "Jon",
        "last_name": "Snow",
        "address1": "123 Amoebobacterieae St",
        "city": "Ottawa",
        "province": "Ontario",
        "country": "Canada",
        "zip": "K2P0V6",
        "phone": "555-625-1199",
        "country_code": "CA",
        "province_code": "ON",
    }
    return {
        "id": order.order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order.order_id}",
        "app_id": None,
        "browser_ip": "203.0.113.10",
        "buyer_accepts_marketing": False,
        "cancel_reason": "customer" if cancelled else None,
        "cancelled_at": "2026-11-27T11:00:00-05:00" if cancelled else None,
        "cart_token": "c1-7d53d4f8a1a1c9b1e1f6e0b8b2f0b9a7",
        "checkout_id": 901414060,
        "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c",
        "confirmed": True,
        "contact_email": "jon@example.com",
        "created_at": "2026-11-27T10:00:00-05:00",
        "currency": order.currency,
        "current_subtotal_price": order.total,
        "current_total_price": order.total,
        "customer": customer,
        "email": "jon@example.com",
        "financial_status": "voided" if cancelled else "paid",
        "fulfillment_status": None,
        "name": "#1001",
        "note": None,
        "note_attributes": note_attributes,
        "number": 1,
        "order_number": 1001,
        "presentment_currency": order.currency,
        "processed_at": "2026-11-27T10:00:00-05:00",
        "shipping_address": address,
        "billing_address": address,
        "subtotal_price": order.total,
        "tags": "fanfare, drop",
        "tax_lines": [],
        "taxes_included": False,
        "test": False,
        "total_discounts": "0.00",
        "total_line_items_price": order.total,
        "total_price": order.total,
        "total_price_set": {
            "shop_money": {"amount": order.total, "currency_code": order.currency},
            "presentment_money": {"amount": order.total, "currency_code": order.currency},
        },
        "total_tax": "0.00",
        "total_weight": 0,
        "updated_at": "2026-11-27T10:00:05-05:00",
        "line_items": line_items,
        "shipping_lines": [],
        "refunds": [],
    }


def _shopify_line_item(index: int, properties: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "id": 466157049 + index,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{466157049 + index}",
        "fulfillable_quantity": 1,
        "fulfillment_service": "manual",
        "gift_card": False,
        "grams": 200,
        "name": f"Limited Sneaker Drop - Size {40 + index}",
        "price": "199.00",
        "product_exists": True,
        "product_id": 632910392,
        "properties": properties,
        "quantity": 1,
        "requires_shipping": True,
        "sku": f"DROP-{40 + index}",
        "taxable": True,
        "title": "Limited Sneaker Drop",
        "total_discount": "0.00",
        "variant_id": 39072856 + index,
        "variant_title": f"Size {40 + index}",
        "vendor": "Fanfare Demo",
        "tax_lines": [],
        "discount_allocations": [],
    }


def shopify_refund(order: SampleOrder, amount: str = "199.00") -> dict[str, Any]:
    return {
        "id": 509562969,
        "order_id": order.order_id,
        "created_at": "2026-11-27T12:00:00-05:00",
        "note": "customer changed their mind",
        "user_id": None,
        "processed_at": "2026-11-27T12:00:00-05:00",
        "restock": True,
        "admin_graphql_api_id": "gid://shopify/Refund/509562969",
        "refund_line_items": [],
        "transactions": [
            {
                "id": 179259969,
                "order_id": order.order_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": "success",
                "amount": amount,
                "currency": order.currency,
            }
        ],
        "order_adjustments": [],
    }


def shopify_headers(
    topic: str,
    body: bytes,
    secret: str,
    *,
    webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    shop: str = "fanfare-demo.myshopify.com",
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": compute_signature(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": f"evt-{webhook_id}",
        "X-Shopify-Triggered-At": "2026-11-27T15:00:05.123456Z",
    }


def woocommerce_order(order: SampleOrder, status: str = "processing") -> dict[str, Any]:
    meta: list[dict[str, Any]] = []
    if not order.per_line_item and order.admissions:
        first = order.admissions[0]
        meta = [
            {"id": 1001, "key": "_fanfare_distribution_id", "value": first.distribution_id},
            {"id": 1002, "key": "_fanfare_distribution_type", "value": first.distribution_type},
            {"id": 1003, "key": "_fanfare_consumer_id", "value": first.consumer_id},
        ]
    line_items = []
    for index, admission in enumerate(order.admissions if order.per_line_item else ()):
        line_items.append(
            _woocommerce_line_item(
                index,
                [
                    {
                        "id": 2000 + index * 3,
                        "key": "_fanfare_distribution_id",
                        "value": admission.distribution_id,
                    },
                    {
                        "id": 2001 + index * 3,
                        "key": "_fanfare_distribution_type",
                        "value": admission.distribution_type,
                    },
                    {"id": 2002 + index * 3, "key": "_fanfare_consumer_id", "value": admission.consumer_id},
                ],
            )
        )
    line_items += [_woocommerce_line_item(len(line_items) + i, []) for i in range(order.extra_line_items)]
    paid = status in ("processing", "completed")
    return {
        "id": order.order_id,
        "parent_id": 0,
        "status": status,
        "currency": order.currency,
        "version": "9.4.0",
        "prices_include_tax": False,
        "date_created": "2026-11-27T10:00:00",
        "date_created_gmt": "2026-11-27T15:00:00",
        "date_modified": "2026-11-27T10:00:05",
        "date_modified_gmt": "2026-11-27T15:00:05",
        "date_paid": "2026-11-27T10:00:04" if paid else None,
        "date_paid_gmt": "2026-11-27T15:00:04" if paid else None,
        "discount_total": "0.00",
        "shipping_total": "0.00",
        "cart_tax": "0.00",
        "total": order.total,
        "total_tax": "0.00",
        "customer_id": 0,
        "order_key": "wc_order_FhK4nV2yYx3Zk",
        "billing": {"first_name": "Jon", "last_name": "Snow", "email": "jon@example.com", "country": "CA"},
        "shipping": {"first_name": "Jon", "last_name": "Snow", "country": "CA"},
        "payment_method": "stripe",
        "payment_method_title": "Credit card",
        "transaction_id": "ch_3Nexample",
        "created_via": "checkout",
        "meta_data": meta,
        "line_items": line_items,
        "refunds": [],
    }


def _woocommerce_line_item(index: int, meta: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": 315 + index,
        "name": f"Limited Sneaker Drop - {40 + index}",
        "product_id": 93,
        "variation_id": 0,
        "quantity": 1,
        "subtotal": "199.00",
        "total": "199.00",
        "sku": f"DROP-{40 + index}",
        "price": 199,
        "meta_data": meta,
    }


def woocommerce_headers(
    topic: str, body: bytes, secret: str, *, webhook_id: int = 7, source: str = "https://shop.example.com/"
) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)",
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": compute_signature(secret, body),
        "X-WC-Webhook-ID": str(webhook_id),
        "X-WC-Webhook-Delivery-ID": "8f1e3c0b7a2d4e5f9a6b1c2d3e4f5a6b",
    }


def woocommerce_ping(webhook_id: int = 7) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/x-www-form-urlencoded"}, f"webhook_id={webhook_id}".encode()


def to_body(payload: dict[str, Any]) -> bytes:
    """Compact JSON, as both platforms send it; the signature covers exactly these bytes."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")

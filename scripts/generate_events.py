"""Write events/*.json: API Gateway v2 events for every webhook case, signed with the local secrets.

Run `make events` after changing a payload or the local secrets; tests/unit/test_events.py fails when the
committed events differ from what this script produces, so they can never silently stop verifying.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fanfare_sync_cli.local.gateway import build_http_api_event
from fanfare_sync_cli.local.stack import DEFAULT_SHOPIFY_WEBHOOK_SECRET, DEFAULT_WC_WEBHOOK_SECRET
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

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
_TWO_ADMISSIONS = SampleOrder(
    order_id=820982911946154509,
    total="398.00",
    per_line_item=True,
    extra_line_items=0,
    admissions=(
        SampleAdmission("queue_01HXYZ123456789", "queue", "cons_01HXYZ123456789"),
        SampleAdmission("draw_01HXYZ987654321", "draw", "cons_01HXYZ123456789"),
    ),
)


def _shopify(
    topic: str, payload: dict[str, Any], secret: str = DEFAULT_SHOPIFY_WEBHOOK_SECRET
) -> dict[str, Any]:
    body = to_body(payload)
    return _event("/webhooks/shopify", shopify_headers(topic, body, secret), body)


def _woocommerce(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    body = to_body(payload)
    return _event("/webhooks/woocommerce", woocommerce_headers(topic, body, DEFAULT_WC_WEBHOOK_SECRET), body)


def _event(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    event = build_http_api_event(
        "POST", path, "", {"Host": "localhost:3000", **headers}, body, "203.0.113.10"
    )
    # Fixed ids and times keep the files stable between runs.
    context = event["requestContext"]
    context.update(
        requestId="local-sample-request", time="27/Nov/2026:15:00:05 +0000", timeEpoch=1795791605000
    )
    return event


EVENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "shopify_orders_paid.json": lambda: _shopify("orders/paid", shopify_order(SampleOrder())),
    "shopify_orders_paid_two_admissions.json": lambda: _shopify(
        "orders/paid", shopify_order(_TWO_ADMISSIONS)
    ),
    "shopify_orders_cancelled.json": lambda: _shopify(
        "orders/cancelled", shopify_order(SampleOrder(), cancelled=True)
    ),
    "shopify_refunds_create.json": lambda: _shopify("refunds/create", shopify_refund(SampleOrder())),
    "shopify_orders_paid_forged.json": lambda: _shopify(
        "orders/paid", shopify_order(SampleOrder()), secret="not-the-shop-secret"
    ),
    "woocommerce_order_paid.json": lambda: _woocommerce("order.updated", woocommerce_order(SampleOrder())),
    "woocommerce_order_cancelled.json": lambda: _woocommerce(
        "order.updated", woocommerce_order(SampleOrder(), status="cancelled")
    ),
    "woocommerce_ping.json": lambda: _event("/webhooks/woocommerce", *woocommerce_ping()),
}


def render(name: str) -> str:
    return json.dumps(EVENTS[name](), indent=2, sort_keys=True) + "\n"


def main() -> int:
    EVENTS_DIR.mkdir(exist_ok=True)
    for name in EVENTS:
        (EVENTS_DIR / name).write_text(render(name), encoding="utf-8")
        print(f"wrote events/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What `fanfare-sync send` builds, and the small parsers the operator commands share."""

from __future__ import annotations

import json

import pytest

from fanfare_sync.logic.verify_signature import compute_signature
from fanfare_sync_cli.formatting import human_age, parse_duration, table
from fanfare_sync_cli.samples import SampleAdmission
from fanfare_sync_cli.webhooks import (
    admissions,
    order_with,
    shopify_delivery,
    woocommerce_delivery,
)


def test_several_admissions_are_distinct_pairs_on_line_items() -> None:
    built = admissions(3, "draw", "draw_1", "cons_1")
    assert [(a.distribution_id, a.consumer_id) for a in built] == [
        ("draw_1", "cons_1"),
        ("draw_1_2", "cons_1"),
        ("draw_1_3", "cons_1"),
    ]
    order = order_with(42, "10.00", "EUR", built, on_line_items=True)
    delivery = shopify_delivery("orders/paid", order, "x.myshopify.com", "s3cret")
    properties = [
        item["properties"] for item in json.loads(delivery.body)["line_items"] if item["properties"]
    ]
    assert [p[0]["value"] for p in properties] == ["draw_1", "draw_1_2", "draw_1_3"]


def test_signatures_verify_with_the_secret_unless_forged() -> None:
    order = order_with(42, "10.00", "USD", (SampleAdmission(),), on_line_items=False)
    good = shopify_delivery("orders/paid", order, "x.myshopify.com", "s3cret")
    forged = shopify_delivery("orders/paid", order, "x.myshopify.com", "s3cret", forged=True)
    assert good.headers["X-Shopify-Hmac-Sha256"] == compute_signature("s3cret", good.body)
    assert forged.headers["X-Shopify-Hmac-Sha256"] != compute_signature("s3cret", forged.body)
    assert good.delivery_id != forged.delivery_id


def test_refund_and_woocommerce_deliveries() -> None:
    order = order_with(7, "5.00", "USD", (SampleAdmission(),), on_line_items=False)
    refund = shopify_delivery("refunds/create", order, "x.myshopify.com", "k")
    assert json.loads(refund.body)["order_id"] == 7
    assert "refund 5.00 USD" in refund.summary
    first = woocommerce_delivery("order.updated", "completed", order, "shop.example.com", "k")
    second = woocommerce_delivery("order.updated", "completed", order, "shop.example.com", "k")
    assert first.headers["X-WC-Webhook-Source"] == "https://shop.example.com/"
    assert first.headers["X-WC-Webhook-Delivery-ID"] != second.headers["X-WC-Webhook-Delivery-ID"]
    assert json.loads(first.body)["status"] == "completed"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1.5m", 90)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5x", "-1m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (192, "3m12s"), (1800, "30m"), (7500, "2h05m"), (86400, "1d"), (-3, "0s")],
)
def test_human_age(seconds: float, text: str) -> None:
    assert human_age(seconds) == text


def test_table_aligns_columns() -> None:
    assert table(("A", "LONG"), [("xyz", None), ("1", "2")]) == ["A    LONG", "xyz", "1    2"]

"""events/ holds valid, current samples: signed with the local secrets, exactly as the script writes them."""

from __future__ import annotations

import base64

import pytest

from fanfare_sync.logic.verify_signature import signature_matches
from fanfare_sync_cli.local.stack import DEFAULT_SHOPIFY_WEBHOOK_SECRET, DEFAULT_WC_WEBHOOK_SECRET
from scripts.generate_events import EVENTS, render
from tests.conftest import EVENTS_DIR, load_event


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_committed_event_is_what_the_generator_writes(name: str) -> None:
    assert (EVENTS_DIR / name).read_text(encoding="utf-8") == render(name), "run `make events`"


def test_no_stray_event_files() -> None:
    assert {path.name for path in EVENTS_DIR.glob("*.json")} == set(EVENTS)


@pytest.mark.parametrize(
    ("name", "header", "secret", "valid"),
    [
        ("shopify_orders_paid.json", "x-shopify-hmac-sha256", DEFAULT_SHOPIFY_WEBHOOK_SECRET, True),
        (
            "shopify_orders_paid_two_admissions.json",
            "x-shopify-hmac-sha256",
            DEFAULT_SHOPIFY_WEBHOOK_SECRET,
            True,
        ),
        ("shopify_orders_cancelled.json", "x-shopify-hmac-sha256", DEFAULT_SHOPIFY_WEBHOOK_SECRET, True),
        ("shopify_refunds_create.json", "x-shopify-hmac-sha256", DEFAULT_SHOPIFY_WEBHOOK_SECRET, True),
        ("shopify_orders_paid_forged.json", "x-shopify-hmac-sha256", DEFAULT_SHOPIFY_WEBHOOK_SECRET, False),
        ("woocommerce_order_paid.json", "x-wc-webhook-signature", DEFAULT_WC_WEBHOOK_SECRET, True),
        ("woocommerce_order_cancelled.json", "x-wc-webhook-signature", DEFAULT_WC_WEBHOOK_SECRET, True),
    ],
)
def test_signed_events_verify_with_the_local_secret(name: str, header: str, secret: str, valid: bool) -> None:
    event = load_event(name)
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    assert signature_matches(body, event["headers"][header], [secret]) is valid


def test_ping_event_is_unsigned_form_post() -> None:
    event = load_event("woocommerce_ping.json")
    assert "x-wc-webhook-signature" not in event["headers"]
    assert base64.b64decode(event["body"]) == b"webhook_id=7"

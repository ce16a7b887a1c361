"""Property-based tests (hypothesis) on signature verification, payload extraction and ingest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fanfare_sync.errors import SecretsUnavailableError
from fanfare_sync.logic.extract_shopify_order import extract_shopify_order
from fanfare_sync.logic.extract_woocommerce_order import extract_woocommerce_order
from fanfare_sync.logic.extraction import Ignored, MalformedPayloadError
from fanfare_sync.logic.ingest_webhook import SHOPIFY, WOOCOMMERCE, IngestOutcome, ingest_webhook
from fanfare_sync.logic.verify_signature import compute_signature, signature_matches
from fanfare_sync.models.queue_message import OrderMessage

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
fanfare_names = st.sampled_from(
    ["fanfare_distribution_id", "_fanfare_distribution_type", "fanfare_consumer_id", "other", ""]
)
# Payloads shaped like orders, so the generator reaches the extraction logic and not only its first check.
order_like = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(), st.text(max_size=30), st.none(), st.booleans()),
        "order_id": st.one_of(st.integers(), st.text(max_size=10)),
        "status": st.sampled_from(["processing", "completed", "cancelled", "refunded", "pending", ""]),
        "total_price": json_values,
        "total": json_values,
        "currency": json_values,
        "note_attributes": st.lists(
            st.fixed_dictionaries({"name": fanfare_names, "value": json_values}), max_size=4
        ),
        "meta_data": st.lists(
            st.fixed_dictionaries({"key": fanfare_names, "value": json_values}), max_size=4
        ),
        "line_items": st.lists(
            st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {
                        "properties": st.lists(
                            st.fixed_dictionaries({"name": fanfare_names, "value": json_values}), max_size=3
                        ),
                        "meta_data": st.lists(
                            st.fixed_dictionaries({"key": fanfare_names, "value": json_values}), max_size=3
                        ),
                    }
                ),
            ),
            max_size=4,
        ),
        "transactions": json_values,
        "refund_line_items": json_values,
    }
)
shopify_topics = st.sampled_from(["orders/paid", "orders/cancelled", "refunds/create", "orders/create", ""])
woo_topics = st.sampled_from(["order.created", "order.updated", "order.deleted", ""])


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=64))
def test_own_signature_always_verifies(body: bytes, secret: str) -> None:
    assert signature_matches(body, compute_signature(secret, body), [secret])


@given(body=st.binary(min_size=1, max_size=512), secret=st.text(min_size=1, max_size=32), data=st.data())
def test_any_flipped_bit_is_rejected(body: bytes, secret: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(body) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = body[:index] + bytes([body[index] ^ (1 << bit)]) + body[index + 1 :]
    assert not signature_matches(tampered, compute_signature(secret, body), [secret])


@given(
    body=st.binary(max_size=256),
    secret=st.text(min_size=1, max_size=32),
    other=st.text(min_size=1, max_size=32),
)
def test_another_secret_is_rejected(body: bytes, secret: str, other: str) -> None:
    if other != secret:
        assert not signature_matches(body, compute_signature(other, body), [secret])


@given(
    body=st.binary(max_size=256),
    header=st.text(max_size=100),
    secrets=st.lists(st.text(max_size=20), max_size=3),
)
def test_arbitrary_headers_and_secrets_never_raise(body: bytes, header: str, secrets: list[str]) -> None:
    signature_matches(body, header, secrets)


@given(payload=st.one_of(order_like, json_values), topic=shopify_topics, shop=st.text(max_size=30))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_shopify_extraction_yields_a_message_an_ignore_or_malformed_only(
    payload: Any, topic: str, shop: str
) -> None:
    headers = {"x-shopify-topic": topic, "x-shopify-shop-domain": shop}
    try:
        result = extract_shopify_order(headers, payload, "2026-11-27T00:00:00.000Z")
    except MalformedPayloadError:
        return
    assert isinstance(result, OrderMessage | Ignored)
    if isinstance(result, OrderMessage):
        # Whatever it was built from, it is a valid contract message.
        assert OrderMessage.from_json(result.to_json()) == result


@given(payload=st.one_of(order_like, json_values), topic=woo_topics, source=st.text(max_size=30))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_woocommerce_extraction_yields_a_message_an_ignore_or_malformed_only(
    payload: Any, topic: str, source: str
) -> None:
    headers = {"x-wc-webhook-topic": topic, "x-wc-webhook-source": source}
    try:
        result = extract_woocommerce_order(headers, payload, "2026-11-27T00:00:00.000Z")
    except MalformedPayloadError:
        return
    assert isinstance(result, OrderMessage | Ignored)


@dataclass
class Secrets:
    values: tuple[str, ...] = ("s3cret",)
    down: bool = False

    def current(self) -> tuple[str, ...]:
        if self.down:
            raise SecretsUnavailableError("down")
        return self.values

    def refreshed(self) -> tuple[str, ...] | None:
        return None


@dataclass
class Queue:
    sent: list[OrderMessage] = field(default_factory=list)

    def send(self, message: OrderMessage) -> None:
        self.sent.append(message)


@given(
    payload=st.one_of(order_like, json_values),
    raw=st.binary(max_size=300),
    use_raw=st.booleans(),
    sign=st.sampled_from(["right", "wrong", "none"]),
    topic=shopify_topics,
    platform=st.sampled_from([SHOPIFY, WOOCOMMERCE]),
)
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
def test_ingest_never_crashes_and_never_queues_without_a_valid_signature(
    payload: Any, raw: bytes, use_raw: bool, sign: str, topic: str, platform: Any
) -> None:
    body = raw if use_raw else json.dumps(payload, default=str).encode()
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": "shop.myshopify.com",
        "x-wc-webhook-topic": "order.updated",
        "x-wc-webhook-source": "https://shop.example.com/",
    }
    if sign != "none":
        headers[platform.signature_header] = compute_signature("s3cret" if sign == "right" else "guess", body)
    queue = Queue()
    result = ingest_webhook(platform, headers, body, Secrets(), queue)
    assert result.status_code in (200, 401)
    if sign != "right":
        assert queue.sent == []
        assert result.outcome in (IngestOutcome.UNAUTHORIZED, IngestOutcome.PING)
    if result.outcome is IngestOutcome.QUEUED:
        assert queue.sent == [result.message]

"""The ingest decision table, with the secrets and queue seams replaced by in-memory doubles."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fanfare_sync.errors import QueueUnavailableError, SecretsUnavailableError
from fanfare_sync.logic.extraction import IgnoreReason
from fanfare_sync.logic.ingest_webhook import SHOPIFY, WOOCOMMERCE, IngestOutcome, ingest_webhook
from fanfare_sync.logic.verify_signature import compute_signature
from fanfare_sync.models.queue_message import OrderMessage
from fanfare_sync_cli.samples import SampleOrder, shopify_headers, shopify_order, to_body, woocommerce_headers

SECRET = "shop-secret"


@dataclass
class Secrets:
    values: tuple[str, ...] = (SECRET,)
    fresh: tuple[str, ...] | None = None
    unavailable: bool = False
    refreshes: int = 0

    def current(self) -> tuple[str, ...]:
        if self.unavailable:
            raise SecretsUnavailableError("ResourceNotFoundException")
        return self.values

    def refreshed(self) -> tuple[str, ...] | None:
        self.refreshes += 1
        return self.fresh


@dataclass
class Queue:
    sent: list[OrderMessage] = field(default_factory=list)
    down: bool = False

    def send(self, message: OrderMessage) -> None:
        if self.down:
            raise QueueUnavailableError("EndpointConnectionError")
        self.sent.append(message)


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def shopify_request(body: bytes, secret: str = SECRET, topic: str = "orders/paid") -> dict[str, str]:
    return lower(shopify_headers(topic, body, secret))


PAID_BODY = to_body(shopify_order(SampleOrder()))


def test_signed_paid_order_is_queued_and_acknowledged() -> None:
    queue = Queue()
    result = ingest_webhook(SHOPIFY, shopify_request(PAID_BODY), PAID_BODY, Secrets(), queue)
    assert (result.outcome, result.status_code) == (IngestOutcome.QUEUED, 200)
    assert queue.sent == [result.message]
    assert result.order_id == "820982911946154508"


@pytest.mark.parametrize("signature", [None, "", "forged=="])
def test_unsigned_or_forged_request_is_401_and_never_queued(signature: str | None) -> None:
    headers = shopify_request(PAID_BODY)
    headers.pop("x-shopify-hmac-sha256")
    if signature is not None:
        headers["x-shopify-hmac-sha256"] = signature
    queue = Queue()
    result = ingest_webhook(SHOPIFY, headers, PAID_BODY, Secrets(), queue)
    assert (result.outcome, result.status_code) == (IngestOutcome.UNAUTHORIZED, 401)
    assert queue.sent == []


def test_body_signed_with_another_platforms_secret_is_rejected() -> None:
    body = PAID_BODY
    headers = lower(woocommerce_headers("order.updated", body, "wc-secret"))
    result = ingest_webhook(WOOCOMMERCE, headers, body, Secrets(values=("other",)), Queue())
    assert result.outcome is IngestOutcome.UNAUTHORIZED


def test_secret_rotated_since_the_cache_was_filled_is_picked_up_on_mismatch() -> None:
    secrets = Secrets(values=("old-secret",), fresh=("new-secret", "old-secret"))
    queue = Queue()
    result = ingest_webhook(SHOPIFY, shopify_request(PAID_BODY, "new-secret"), PAID_BODY, secrets, queue)
    assert result.outcome is IngestOutcome.QUEUED
    assert secrets.refreshes == 1
    assert len(queue.sent) == 1


def test_matching_signature_does_not_reread_secrets() -> None:
    secrets = Secrets()
    ingest_webhook(SHOPIFY, shopify_request(PAID_BODY), PAID_BODY, secrets, Queue())
    assert secrets.refreshes == 0


def test_secrets_unavailable_is_503_so_the_platform_retries() -> None:
    queue = Queue()
    result = ingest_webhook(SHOPIFY, shopify_request(PAID_BODY), PAID_BODY, Secrets(unavailable=True), queue)
    assert (result.outcome, result.status_code) == (IngestOutcome.SECRETS_UNAVAILABLE, 503)
    assert queue.sent == []


def test_queue_failure_is_503_so_the_request_is_not_acknowledged() -> None:
    result = ingest_webhook(SHOPIFY, shopify_request(PAID_BODY), PAID_BODY, Secrets(), Queue(down=True))
    assert (result.outcome, result.status_code) == (IngestOutcome.QUEUE_UNAVAILABLE, 503)
    assert result.order_id == "820982911946154508"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe\x00garbage", "body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body nested too deeply"),
        (b'{"id": ' + b"9" * 5000 + b"}", "body is not valid JSON"),
        (b"[1, 2, 3]", "body is not a JSON object"),
        (b"", "body is not valid JSON"),
    ],
)
def test_signed_but_malformed_body_is_acknowledged_counted_and_not_queued(body: bytes, detail: str) -> None:
    queue = Queue()
    result = ingest_webhook(SHOPIFY, shopify_request(body), body, Secrets(), queue)
    assert (result.outcome, result.status_code, result.detail) == (IngestOutcome.MALFORMED, 200, detail)
    assert queue.sent == []


def test_not_fanfare_order_is_acknowledged_and_not_queued() -> None:
    body = to_body(shopify_order(SampleOrder(admissions=())))
    queue = Queue()
    result = ingest_webhook(SHOPIFY, shopify_request(body), body, Secrets(), queue)
    assert (result.outcome, result.ignore_reason, result.status_code) == (
        IngestOutcome.IGNORED,
        IgnoreReason.NOT_FANFARE,
        200,
    )
    assert queue.sent == []


def test_woocommerce_ping_is_answered_200_without_secrets_or_queue() -> None:
    queue = Queue()
    result = ingest_webhook(
        WOOCOMMERCE,
        {"content-type": "application/x-www-form-urlencoded"},
        b"webhook_id=3",
        Secrets(unavailable=True),
        queue,
    )
    assert (result.outcome, result.status_code) == (IngestOutcome.PING, 200)
    assert queue.sent == []


def test_woocommerce_ping_shape_with_a_signature_header_is_verified_like_any_request() -> None:
    headers = {"x-wc-webhook-signature": compute_signature("wrong", b"webhook_id=3")}
    result = ingest_webhook(WOOCOMMERCE, headers, b"webhook_id=3", Secrets(), Queue())
    assert result.outcome is IngestOutcome.UNAUTHORIZED


def test_one_mebibyte_body_is_verified_and_queued() -> None:
    payload = shopify_order(SampleOrder())
    payload["note"] = "x" * (1024 * 1024)
    body = to_body(payload)
    assert len(body) > 1024 * 1024
    queue = Queue()
    result = ingest_webhook(SHOPIFY, shopify_request(body), body, Secrets(), queue)
    assert result.outcome is IngestOutcome.QUEUED
    # The queued message is the normalised order, not the raw body: it stays small whatever the body size.
    assert len(queue.sent[0].to_json()) < 2048


def test_the_delivery_id_is_reported_only_once_the_signature_is_verified() -> None:
    delivery_id = shopify_request(PAID_BODY)["x-shopify-webhook-id"]
    queued = ingest_webhook(SHOPIFY, shopify_request(PAID_BODY), PAID_BODY, Secrets(), Queue())
    malformed_body = b'{"id": '
    malformed = ingest_webhook(SHOPIFY, shopify_request(malformed_body), malformed_body, Secrets(), Queue())
    forged = ingest_webhook(
        SHOPIFY, shopify_request(PAID_BODY, secret="guess"), PAID_BODY, Secrets(), Queue()
    )

    assert (queued.outcome, queued.delivery_id) == (IngestOutcome.QUEUED, delivery_id)
    assert (malformed.outcome, malformed.delivery_id) == (IngestOutcome.MALFORMED, delivery_id)
    assert (forged.outcome, forged.delivery_id) == (IngestOutcome.UNAUTHORIZED, None)

"""Ingest one webhook delivery: verify, extract, queue, and decide the HTTP answer.

The answer is 2xx only once the order event is durably in SQS, so a failure here makes the platform retry
(Shopify retries 8 times over 4 hours; WooCommerce never retries, which is why this path does so little).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from fanfare_sync.errors import QueueUnavailableError, SecretsUnavailableError
from fanfare_sync.logic import extract_shopify_order, extract_woocommerce_order
from fanfare_sync.logic.extraction import Extraction, Ignored, IgnoreReason, MalformedPayloadError, short_text
from fanfare_sync.logic.verify_signature import signature_matches
from fanfare_sync.models.queue_message import InvalidQueueMessageError, OrderMessage, Platform


class IngestOutcome(StrEnum):
    QUEUED = "queued"
    IGNORED = "ignored"
    PING = "ping"
    UNAUTHORIZED = "unauthorized"
    MALFORMED = "malformed"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    SECRETS_UNAVAILABLE = "secrets_unavailable"


# One place maps outcomes to HTTP. Malformed-but-signed bodies get 200: retrying an unparseable body can
# never succeed, and repeated non-2xx answers make Shopify delete the subscription and WooCommerce disable
# the webhook, which would stop every later order. They are counted and alarmed instead.
_STATUS = {
    IngestOutcome.QUEUED: 200,
    IngestOutcome.IGNORED: 200,
    IngestOutcome.PING: 200,
    IngestOutcome.MALFORMED: 200,
    IngestOutcome.UNAUTHORIZED: 401,
    IngestOutcome.QUEUE_UNAVAILABLE: 503,
    IngestOutcome.SECRETS_UNAVAILABLE: 503,
}


# NamedTuples rather than dataclasses for these small immutable records: defining a dataclass costs ~1 ms
# of every cold start (it generates and compiles its methods), a NamedTuple a fifth of that.
class IngestResult(NamedTuple):
    outcome: IngestOutcome
    message: OrderMessage | None = None
    ignore_reason: IgnoreReason | None = None
    order_id: str | None = None
    detail: str = ""
    # The platform's delivery id, once the signature proved the platform sent it: what an operator quotes.
    delivery_id: str | None = None

    @property
    def status_code(self) -> int:
        return _STATUS[self.outcome]


class AcceptedSecrets(Protocol):
    def current(self) -> tuple[str, ...]:
        """The secrets a signature may be made with (several during a rotation)."""
        ...

    def refreshed(self) -> tuple[str, ...] | None:
        """Re-read the secrets after a mismatch, at most now and then; None when not re-read."""
        ...


class OrderQueue(Protocol):
    def send(self, message: OrderMessage) -> None: ...


class WebhookPlatform(NamedTuple):
    platform: Platform
    signature_header: str
    delivery_id_header: str
    extract: Callable[[Mapping[str, str], Any, str], Extraction]
    is_unsigned_ping: Callable[[Mapping[str, str], bytes], bool] = lambda _headers, _body: False


SHOPIFY = WebhookPlatform(
    platform=Platform.SHOPIFY,
    signature_header=extract_shopify_order.SIGNATURE_HEADER,
    delivery_id_header=extract_shopify_order.DELIVERY_ID_HEADER,
    extract=extract_shopify_order.extract_shopify_order,
)
WOOCOMMERCE = WebhookPlatform(
    platform=Platform.WOOCOMMERCE,
    signature_header=extract_woocommerce_order.SIGNATURE_HEADER,
    delivery_id_header=extract_woocommerce_order.DELIVERY_ID_HEADER,
    extract=extract_woocommerce_order.extract_woocommerce_order,
    is_unsigned_ping=extract_woocommerce_order.is_woocommerce_ping,
)


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ingest_webhook(
    platform: WebhookPlatform,
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: AcceptedSecrets,
    queue: OrderQueue,
    *,
    now: Callable[[], str] = utc_timestamp,
) -> IngestResult:
    """`headers` must have lower-case names (API Gateway v2 delivers them so)."""
    if platform.is_unsigned_ping(headers, raw_body):
        return IngestResult(IngestOutcome.PING, detail="pong")

    signature = headers.get(platform.signature_header)
    if not signature:
        return IngestResult(IngestOutcome.UNAUTHORIZED, detail="missing signature")
    try:
        verified = signature_matches(raw_body, signature, secrets.current())
        if not verified:
            # A secret rotated in Secrets Manager a moment ago must not be rejected until the cache expires.
            fresh = secrets.refreshed()
            verified = fresh is not None and signature_matches(raw_body, signature, fresh)
    except SecretsUnavailableError:
        return IngestResult(IngestOutcome.SECRETS_UNAVAILABLE, detail="temporarily unavailable")
    if not verified:
        return IngestResult(IngestOutcome.UNAUTHORIZED, detail="invalid signature")
    delivery_id = short_text(headers.get(platform.delivery_id_header))

    try:
        # Decimal, never float: money must reach Fanfare exactly as the shop wrote it.
        payload = json.loads(raw_body, parse_float=Decimal)
        extraction = platform.extract(headers, payload, now())
    except (ValueError, RecursionError, MalformedPayloadError, InvalidQueueMessageError) as error:
        return IngestResult(IngestOutcome.MALFORMED, detail=_malformed_detail(error), delivery_id=delivery_id)

    if isinstance(extraction, Ignored):
        return IngestResult(
            IngestOutcome.IGNORED,
            ignore_reason=extraction.reason,
            order_id=extraction.order_id,
            detail=extraction.reason.value,
            delivery_id=delivery_id,
        )
    try:
        queue.send(extraction)
    except QueueUnavailableError:
        return IngestResult(
            IngestOutcome.QUEUE_UNAVAILABLE,
            order_id=extraction.orderId,
            detail="temporarily unavailable",
            delivery_id=delivery_id,
        )
    return IngestResult(
        IngestOutcome.QUEUED,
        message=extraction,
        order_id=extraction.orderId,
        detail="queued",
        delivery_id=delivery_id,
    )


def _malformed_detail(error: Exception) -> str:
    # Only our own wording goes back to the caller or the logs: parser messages can quote the body.
    if isinstance(error, MalformedPayloadError):
        return str(error)
    if isinstance(error, InvalidQueueMessageError):
        return "payload fields out of range"
    if isinstance(error, RecursionError):
        return "body nested too deeply"
    return "body is not valid JSON"

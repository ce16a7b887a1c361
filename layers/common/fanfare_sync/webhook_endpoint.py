"""The shared body of the two webhook functions: API Gateway v2 request in, HTTP answer out.

Each `functions/*_webhook/app.py` declares its route and decorators and delegates here, so both platforms
log, count and answer identically.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from fanfare_sync.adapters.sqs_order_queue import SQS_CLIENT_CONFIG, SqsOrderQueue
from fanfare_sync.adapters.webhook_secrets import SecretsManagerWebhookSecrets
from fanfare_sync.config import required_env
from fanfare_sync.logic.extraction import IgnoreReason
from fanfare_sync.logic.ingest_webhook import (
    AcceptedSecrets,
    IngestOutcome,
    IngestResult,
    OrderQueue,
    WebhookPlatform,
    ingest_webhook,
)
from fanfare_sync.logic.verify_signature import decode_woocommerce_secret
from fanfare_sync.models.queue_message import Platform

WEBHOOKS_METRIC = "Webhooks"
# Signed webhooks we could not use: a storefront or platform problem someone must look at. Emitted with
# the `service` dimension only, so one alarm covers both platforms.
DATA_PROBLEMS_METRIC = "WebhookDataProblems"
_DATA_PROBLEMS = frozenset({IngestOutcome.MALFORMED.value, IgnoreReason.INCOMPLETE_FANFARE_DATA.value})

_SECRET_ENV = {
    Platform.SHOPIFY: "SHOPIFY_WEBHOOK_SECRET_ARN",
    Platform.WOOCOMMERCE: "WC_WEBHOOK_SECRET_ARN",
}


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The exact bytes the platform signed: base64-decoded when API Gateway encoded them."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return body.encode("utf-8", "surrogateescape")


class WebhookEndpoint:
    def __init__(
        self,
        platform: WebhookPlatform,
        secrets: AcceptedSecrets,
        queue: OrderQueue,
        logger: Logger,
        metrics: Metrics,
    ) -> None:
        self.platform = platform
        self._secrets = secrets
        self._queue = queue
        self._logger = logger
        self._metrics = metrics

    @classmethod
    def from_environment(cls, platform: WebhookPlatform, logger: Logger, metrics: Metrics) -> WebhookEndpoint:
        """Built once per container, at import, so warm requests reuse the clients and the secret cache."""
        decode = decode_woocommerce_secret if platform.platform is Platform.WOOCOMMERCE else _identity
        secrets = SecretsManagerWebhookSecrets(required_env(_SECRET_ENV[platform.platform]), decode=decode)
        sqs = boto3.client("sqs", config=SQS_CLIENT_CONFIG)
        queue = SqsOrderQueue(required_env("COMPLETION_QUEUE_URL"), sqs)
        return cls(platform, secrets, queue, logger, metrics)

    def register_error_handler(self, app: APIGatewayHttpResolver) -> None:
        @app.exception_handler(Exception)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
        def unexpected_error(error: Exception) -> Response[Any]:
            # A bug, not bad input: log it with its trace, answer 500 so the platform retries, and never
            # put the trace in the response.
            self._logger.exception("webhook handler failed", extra={"error_type": type(error).__name__})
            self._count("error")
            return _json_response(500, {"status": "error"})

    def respond(self, event: APIGatewayProxyEventV2) -> Response[Any]:
        headers = {name.lower(): value for name, value in (event.headers or {}).items()}
        result = ingest_webhook(self.platform, headers, raw_body(event), self._secrets, self._queue)
        self._record(result, headers)
        return _json_response(result.status_code, {"status": result.outcome.value, "detail": result.detail})

    def _record(self, result: IngestResult, headers: dict[str, str]) -> None:
        label = result.ignore_reason.value if result.ignore_reason else result.outcome.value
        self._count(label)
        fields = {
            "platform": self.platform.platform.value,
            "outcome": label,
            "status_code": result.status_code,
            "order_id": result.order_id,
            "delivery_id": result.message.deliveryId if result.message else None,
            "event_id": result.message.eventId if result.message else None,
            "admissions": len(result.message.admissions) if result.message else None,
        }
        # Never the body, never a header value that could carry a signature or a secret.
        if result.outcome in (IngestOutcome.QUEUED, IngestOutcome.IGNORED, IngestOutcome.PING):
            self._logger.info("webhook handled", extra=fields)
        elif result.outcome is IngestOutcome.UNAUTHORIZED:
            self._logger.warning("webhook rejected", extra={**fields, "reason": result.detail})
        else:
            self._logger.error("webhook not processed", extra={**fields, "reason": result.detail})

    def _count(self, outcome: str) -> None:
        self._metrics.add_dimension(name="platform", value=self.platform.platform.value)
        self._metrics.add_dimension(name="outcome", value=outcome)
        self._metrics.add_metric(name=WEBHOOKS_METRIC, unit=MetricUnit.Count, value=1)
        if outcome in _DATA_PROBLEMS:
            with single_metric(name=DATA_PROBLEMS_METRIC, unit=MetricUnit.Count, value=1):
                pass


def _json_response(status_code: int, body: dict[str, str]) -> Response[Any]:
    return Response(status_code=status_code, content_type=content_types.APPLICATION_JSON, body=body)


def _identity(secret: str) -> str:
    return secret

"""The shared body of the two webhook functions: API Gateway v2 event in, HTTP answer out.

Each `functions/*_webhook/app.py` names its platform and route and delegates here, so both platforms
route, log, count and answer identically.

The event is read as the plain dict the HTTP API sends (payload format 2.0) rather than through
Powertools' APIGatewayHttpResolver: each function has one route, and the resolver's routing, response
building and import cost ~55 µs per request and ~100 ms of cold start for nothing a few lines cannot do.
"""

from __future__ import annotations

import base64
import binascii
import json
import traceback
from collections.abc import Mapping
from typing import Any

import botocore.session

from fanfare_sync.adapters.sqs_order_queue import SQS_CLIENT_CONFIG, SqsOrderQueue
from fanfare_sync.adapters.webhook_secrets import SECRETS_CLIENT_CONFIG, SecretsManagerWebhookSecrets
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
from fanfare_sync.webhook_log import WebhookLog

# Outcomes counted as WebhookDataProblems (signed webhooks we could not use).
DATA_PROBLEM_OUTCOMES = frozenset({IngestOutcome.MALFORMED.value, IgnoreReason.INCOMPLETE_FANFARE_DATA.value})

_SECRET_ENV = {
    Platform.SHOPIFY: "SHOPIFY_WEBHOOK_SECRET_ARN",
    Platform.WOOCOMMERCE: "WC_WEBHOOK_SECRET_ARN",
}

# Level and message of each outcome's log line.
_LOG_LINE = {
    IngestOutcome.QUEUED: ("INFO", "webhook handled"),
    IngestOutcome.IGNORED: ("INFO", "webhook handled"),
    IngestOutcome.PING: ("INFO", "webhook handled"),
    IngestOutcome.UNAUTHORIZED: ("WARNING", "webhook rejected"),
    IngestOutcome.MALFORMED: ("ERROR", "webhook not processed"),
    IngestOutcome.QUEUE_UNAVAILABLE: ("ERROR", "webhook not processed"),
    IngestOutcome.SECRETS_UNAVAILABLE: ("ERROR", "webhook not processed"),
}


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The exact bytes the platform signed: base64-decoded when API Gateway encoded them."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return str(body).encode("utf-8", "surrogateescape")


class WebhookEndpoint:
    def __init__(
        self,
        platform: WebhookPlatform,
        route: str,
        secrets: AcceptedSecrets,
        queue: OrderQueue,
        log: WebhookLog,
    ) -> None:
        self.platform = platform
        self.route = route
        self._secrets = secrets
        self._queue = queue
        self._log = log

    @classmethod
    def from_environment(cls, platform: WebhookPlatform, route: str) -> WebhookEndpoint:
        """Built once per container, at import, so warm requests reuse the clients and the secret cache."""
        # botocore itself rather than boto3: two plain clients are all these functions need, and importing
        # boto3 (its resource layer, s3transfer) would add ~20 ms to every cold start. One session serves
        # both clients, so the second reuses the loaded endpoint and credential data.
        session = botocore.session.get_session()
        secrets = SecretsManagerWebhookSecrets(
            required_env(_SECRET_ENV[platform.platform]),
            session.create_client("secretsmanager", config=SECRETS_CLIENT_CONFIG),
            decode=decode_woocommerce_secret if platform.platform is Platform.WOOCOMMERCE else None,
        )
        queue = SqsOrderQueue(
            required_env("COMPLETION_QUEUE_URL"), session.create_client("sqs", config=SQS_CLIENT_CONFIG)
        )
        log = WebhookLog(
            service=required_env("POWERTOOLS_SERVICE_NAME"),
            namespace=required_env("POWERTOOLS_METRICS_NAMESPACE"),
            platform=platform.platform.value,
            data_problem_outcomes=DATA_PROBLEM_OUTCOMES,
        )
        return cls(platform, route, secrets, queue, log)

    def handle(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda handler's body: always an HTTP answer, never an exception."""
        try:
            return self._handle(event, context)
        except Exception as error:
            # A bug, not bad input: log it with its trace, answer 500 so the platform retries, and never
            # put the trace in the response.
            self._log_unexpected(error, event, context)
            return _json_response(500, {"status": "error"})

    def _handle(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        http = event.get("requestContext", {}).get("http", {})
        # API Gateway only invokes the function for its declared route; anything else is a wiring mistake
        # (or a hand-made event), answered as the resolver's routing would: unknown path, wrong method.
        if http.get("path") != self.route:
            return self._refuse(404, "not_found", event, context)
        if http.get("method") != "POST":
            return self._refuse(405, "method_not_allowed", event, context)

        headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
        result = ingest_webhook(self.platform, headers, raw_body(event), self._secrets, self._queue)
        self._record(result, event, context)
        return _json_response(result.status_code, {"status": result.outcome.value, "detail": result.detail})

    def _record(self, result: IngestResult, event: Mapping[str, Any], context: Any) -> None:
        label = result.ignore_reason.value if result.ignore_reason else result.outcome.value
        message = result.message
        # Never the body, never a header value that could carry a signature or a secret. Absent values are
        # left out rather than written as null: CloudWatch Logs bills every byte.
        fields: dict[str, Any] = {"status_code": result.status_code}
        if result.order_id is not None:
            fields["order_id"] = result.order_id
        if result.delivery_id is not None:
            fields["delivery_id"] = result.delivery_id
        if message is not None:
            if message.eventId is not None:
                fields["event_id"] = message.eventId
            fields["admissions"] = len(message.admissions)
        level, text = _LOG_LINE[result.outcome]
        if label in DATA_PROBLEM_OUTCOMES:
            # Incomplete Fanfare data: a storefront problem, logged as an error like a malformed body.
            level, text = _LOG_LINE[IngestOutcome.MALFORMED]
        if level != "INFO":
            fields["reason"] = result.detail
        self._log.request(level, text, label, fields, event, context)

    def _refuse(self, status: int, outcome: str, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        self._log.request(
            "WARNING", "webhook route not served", outcome, {"status_code": status}, event, context
        )
        response = _json_response(status, {"status": outcome})
        if status == 405:
            response["headers"]["Allow"] = "POST"
        return response

    def _log_unexpected(self, error: Exception, event: Mapping[str, Any], context: Any) -> None:
        fields = {
            "status_code": 500,
            "error_type": type(error).__name__,
            "exception": "".join(traceback.format_exception(error)),
        }
        self._log.request("ERROR", "webhook handler failed", "error", fields, event, context)


def _json_response(status_code: int, body: dict[str, str]) -> dict[str, Any]:
    """An HTTP API (payload 2.0) response."""
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }

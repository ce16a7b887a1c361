"""The Fanfare sandbox as a Lambda function behind a function URL (`DeployFanfareSandbox=true` stacks).

The same `SandboxApp` the local sandbox serves, with state in DynamoDB (`SANDBOX_TABLE`) and the one org id
and secret key it accepts read from the stack's Fanfare credentials secret
(`FANFARE_CREDENTIALS_SECRET_ARN`): the consumer reads the same secret, so the two always agree, and a
`fanfare-sync secrets set fanfare` is picked up by both. The control API needs those credentials too.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import boto3  # from the common layer, like every function's

from fanfare_sync_cli.sandbox.dynamodb_store import DynamoDBStore
from fanfare_sync_cli.sandbox.server import MAX_BODY_BYTES, SandboxApp, SandboxResponse

LOG = logging.getLogger("fanfare_sync_cli.sandbox")
LOG.setLevel(logging.INFO)

# Past the consumer's 5 s read timeout, and well inside the function's 15 s timeout (template.yaml).
LAMBDA_HOLD_SECONDS: Final = 8.0
CREDENTIALS_MAX_AGE_SECONDS: Final = 300.0
# A wrong key re-reads the secret (it may just have been rotated), but a flood of them must not.
MIN_SECONDS_BETWEEN_REFRESHES: Final = 10.0


class SecretCredentials:
    """`{"orgId": ..., "secretKey": ...}` from Secrets Manager, cached, re-read on demand (rate-limited)."""

    def __init__(self, client: Any, secret_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._secret_id = secret_id
        self._clock = clock
        self._lock = threading.Lock()
        self._values: tuple[str, str] = ("", "")
        self._read_at = float("-inf")

    @property
    def org_id(self) -> str:
        return self._current()[0]

    @property
    def secret_key(self) -> str:
        return self._current()[1]

    def refresh(self) -> bool:
        with self._lock:
            if self._clock() - self._read_at < MIN_SECONDS_BETWEEN_REFRESHES:
                return False
            self._read()
            return True

    def _current(self) -> tuple[str, str]:
        with self._lock:
            if self._clock() - self._read_at >= CREDENTIALS_MAX_AGE_SECONDS:
                self._read()
            return self._values

    def _read(self) -> None:
        self._read_at = self._clock()
        value = self._client.get_secret_value(SecretId=self._secret_id).get("SecretString") or ""
        try:
            document = json.loads(value)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            # No credentials means nothing authenticates; the value itself is never logged.
            LOG.error("the Fanfare credentials secret is not JSON {orgId, secretKey}")
            self._values = ("", "")
            return
        self._values = (str(document.get("orgId") or ""), str(document.get("secretKey") or ""))

    def __repr__(self) -> str:
        return f"SecretCredentials({self._secret_id!r})"


def event_request(event: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body) of a function URL event (payload format 2.0)."""
    http = event.get("requestContext", {}).get("http", {})
    method = str(http.get("method") or "GET")
    path = str(event.get("rawPath") or http.get("path") or "/")
    headers = {str(name): str(value) for name, value in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")
    return method, path, headers, body


def function_url_response(response: SandboxResponse) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": {"Content-Type": "application/json", **response.headers},
        "body": response.body().decode("utf-8"),
        "isBase64Encoded": False,
    }


def handle_event(app: SandboxApp, event: dict[str, Any]) -> dict[str, Any]:
    method, path, headers, body = event_request(event)
    if len(body) > MAX_BODY_BYTES:
        response = SandboxResponse(413, {"error": "bad_request", "message": "Body too large"})
    else:
        response = app.handle(method, path, headers, body)
    # The request line and status only: never headers or bodies, and the path redacted like locally.
    LOG.info("%s %s -> %s", method, app.redact(path), response.status)
    return function_url_response(response)


_APP: SandboxApp | None = None


def build_app() -> SandboxApp:
    return SandboxApp(
        DynamoDBStore(os.environ["SANDBOX_TABLE"], boto3.client("dynamodb")),
        SecretCredentials(boto3.client("secretsmanager"), os.environ["FANFARE_CREDENTIALS_SECRET_ARN"]),
        hold_seconds=LAMBDA_HOLD_SECONDS,
        control_requires_auth=True,
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _APP  # noqa: PLW0603 - built once per container (the cold start), like every client here
    if _APP is None:
        _APP = build_app()
    return handle_event(_APP, event)

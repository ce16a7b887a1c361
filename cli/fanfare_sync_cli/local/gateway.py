"""The local API Gateway: turns HTTP requests into API Gateway HTTP API (payload 2.0) events.

Routes come from the template's HttpApi events; each request is handed to the same handler Lambda runs,
and its response is turned back into HTTP as API Gateway would.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fanfare_sync_cli.local.function_worker import FunctionInitError, Invocation
from fanfare_sync_cli.local.provision import ACCOUNT_ID

# API Gateway HTTP APIs accept payloads up to 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024
_TEXT_TYPES = ("json", "xml", "javascript", "text/")

Invoke = Callable[[dict[str, Any]], Invocation]


def is_text_content(content_type: str) -> bool:
    """API Gateway passes text bodies as strings and base64-encodes the rest (form posts included)."""
    lowered = content_type.lower()
    return any(marker in lowered for marker in _TEXT_TYPES)


def build_http_api_event(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    source_ip: str,
) -> dict[str, Any]:
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        # HTTP API joins repeated headers with commas.
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    now = datetime.now(UTC)
    route_key = f"{method} {raw_path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": lowered.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if raw_query:
        event["queryStringParameters"] = dict(parse_qsl(raw_query, keep_blank_values=True))
    if body:
        text = _as_text(body) if is_text_content(lowered.get("content-type", "")) else None
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def http_response(invocation: Invocation) -> tuple[int, dict[str, str], bytes]:
    """Map a Lambda result to HTTP the way an HTTP API (payload 2.0) does."""
    if invocation.failed:
        if invocation.error_type == "Sandbox.Timedout":
            return 503, {"content-type": "application/json"}, b'{"message":"Service Unavailable"}'
        return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
    payload = invocation.payload
    if not (isinstance(payload, dict) and "statusCode" in payload):
        # A bare value is taken as a 200 JSON body (the 2.0 format's inferred response).
        return 200, {"content-type": "application/json"}, json.dumps(payload).encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
    body = payload.get("body") or ""
    raw = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(payload["statusCode"]), headers, raw


class _WebhookServer(ThreadingHTTPServer):
    # The stdlib's backlog of 5 resets connections in a burst (a flash sale sends dozens at once).
    request_queue_size = 128


class LocalGateway:
    def __init__(
        self,
        routes: Mapping[tuple[str, str], Invoke],
        host: str = "127.0.0.1",
        port: int = 3000,
        on_response: Callable[[int], None] | None = None,
    ):
        self._routes = dict(routes)
        self._on_response = on_response
        self._server = _WebhookServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalGateway:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        routes = self._routes
        on_response = self._on_response

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "fanfare-sync-local"

            def _serve(self) -> None:
                started = time.perf_counter()
                parts = urlsplit(self.path)
                invoke = routes.get((self.command, parts.path))
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._send(
                        413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'
                    )
                    return
                body = self.rfile.read(length) if length else b""
                if invoke is None:
                    self._send(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
                    return
                event = build_http_api_event(
                    self.command,
                    parts.path,
                    parts.query,
                    dict(self.headers.items()),
                    body,
                    self.client_address[0],
                )
                try:
                    status, headers, payload = http_response(invoke(event))
                except FunctionInitError:
                    status, headers, payload = (
                        500,
                        {"content-type": "application/json"},
                        b'{"message":"Internal Server Error"}',
                    )
                self._send(status, headers, payload)
                if on_response is not None:
                    on_response(status)
                self.log_message(
                    '"%s %s" %s %.1f ms',
                    self.command,
                    parts.path,
                    status,
                    (time.perf_counter() - started) * 1000,
                )

            def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name != "content-length":
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _serve

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                """Replaced by the one line `_serve` prints with the latency."""

            def log_message(self, format: str, *args: Any) -> None:
                print(f"[gateway] {format % args}", flush=True)

        return Handler

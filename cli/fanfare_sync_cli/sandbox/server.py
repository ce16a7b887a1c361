"""A stand-in for Fanfare's admission-completion API, with fault injection (stdlib only).

It follows the contract fanfare-sync codes against (DESIGN.md "Completion", fanfare-api.md §1 and §3):

* `POST /{queues|draws|auctions|timed-releases}/{id}/complete` with either auth style —
  `X-Organization-Id` + `X-Secret-Key` (the guide) or `Authorization: Bearer <secret key>` (the API pages);
  anything else is `401 {"error": "unauthorized", ...}`.
* A JSON object body with a non-empty string `consumerId` (and, if present, an object `metadata`);
  anything else is `400 {"error": "validation_error", "issues": [...]}`.
* First completion of (type, distribution, consumer): `200 {"status": "COMPLETED", ...}`. A repeat:
  `409 {"error": "already_completed", ...}`, or a 200 COMPLETED again if the control API says so — the
  real API's answer is undocumented (fanfare-api.md §1.8), so tests can exercise both.

Fanfare's undocumented corners are not guessed at beyond that: this server exists to exercise *our*
handling of every answer class (success, already completed, retryable, permanent, misconfiguration,
lost responses), which is why the fault injection is the larger part of it.

Control API, all JSON: `GET /_sandbox/health`, `GET /_sandbox/requests`, `GET /_sandbox/completions`,
`POST /_sandbox/reset`, `GET|PUT|DELETE /_sandbox/faults`, `GET|PUT /_sandbox/settings`
(`{"repeat_completion": "conflict"|"ok"}`). Locally it needs no auth (it binds to loopback and is a test
tool); deployed (`control_requires_auth`), every control route but health needs the Fanfare credentials.

Layout: `SandboxApp.handle(method, path, headers, body)` is the whole contract, a plain function of the
request. `FanfareSandbox` serves it with the stdlib HTTP server and in-memory state (`MemoryStore`);
`lambda_handler.py` serves it from a Lambda function URL with state in DynamoDB (`dynamodb_store.py`), so
the local and the deployed staging sandbox cannot drift apart.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import logging
import math
import random
import re
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self, TypedDict, cast
from urllib.parse import unquote, urlsplit

LOG = logging.getLogger(__name__)

DEFAULT_ORG_ID: Final = "org_local"
DEFAULT_SECRET_KEY: Final = "sk_test_local"  # noqa: S105 - the documented local sandbox key, not a secret
# Long enough to outlast any client timeout; stop() wakes held requests at once, so tests never wait it out.
DEFAULT_HOLD_SECONDS: Final = 30.0

SEGMENT_TO_TYPE: Final[Mapping[str, str]] = {
    "queues": "queue",
    "draws": "draw",
    "auctions": "auction",
    "timed-releases": "timed_release",
}
_COMPLETE_PATH: Final = re.compile(r"^/(queues|draws|auctions|timed-releases)/([^/]+)/complete/?$")
_RANDOM_ERROR_STATUSES: Final = (500, 502, 503)
MAX_BODY_BYTES: Final = 1024 * 1024
# Records are bounded so a long `make run` session cannot grow without limit; tests are far below it.
MAX_RECORDS: Final = 10_000
_REDACTED: Final = "[REDACTED]"
_SECRET_HEADERS: Final = frozenset({"x-secret-key", "authorization", "proxy-authorization", "cookie"})
# An idle keep-alive connection is closed after this, so abandoned clients do not pin handler threads.
_IDLE_CONNECTION_SECONDS: Final = 60.0
_HEALTH_PATH: Final = "/_sandbox/health"

RepeatCompletion = Literal["conflict", "ok"]


class FaultSpecError(ValueError):
    """A fault document the sandbox does not understand (answered as 400 by the control API)."""


class RecordedRequest(TypedDict):
    id: int
    received_at: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int | None  # None when the connection was dropped (timeout fault)
    fault: str | None


class RecordedCompletion(TypedDict):
    distribution_type: str
    distribution_id: str
    consumer_id: str
    metadata: dict[str, Any] | None
    completed_at: str
    request_id: int


@dataclass
class FaultRule:
    """One injected answer. `times` counts down per matching request; None means "every time"."""

    status: int = 500
    distribution_id: str | None = None
    consumer_id: str | None = None
    retry_after: float | None = None
    times: int | None = None
    timeout: bool = False
    fail_after_complete: bool = False
    body: Any = None

    def matches(self, distribution_id: str, consumer_id: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.distribution_id is not None and self.distribution_id != distribution_id:
            return False
        return self.consumer_id is None or self.consumer_id == consumer_id

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "distribution_id": self.distribution_id,
            "consumer_id": self.consumer_id,
            "retry_after": self.retry_after,
            "times": self.times,
            "timeout": self.timeout,
            "fail_after_complete": self.fail_after_complete,
            "body": copy.deepcopy(self.body),
        }

    @classmethod
    def from_json(cls, raw: object) -> FaultRule:
        if not isinstance(raw, Mapping):
            raise FaultSpecError("each rule must be a JSON object")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            # Refuse typos ("retry-after") instead of silently injecting a different fault than intended.
            raise FaultSpecError(f"unknown rule fields: {sorted(unknown)}")
        status = raw.get("status", 500)
        if not _is_int(status) or not 200 <= status <= 599:
            raise FaultSpecError("rule status must be an integer HTTP status between 200 and 599")
        retry_after = raw.get("retry_after")
        if retry_after is not None and (not _is_number(retry_after) or retry_after < 0):
            raise FaultSpecError("rule retry_after must be a non-negative number of seconds")
        times = raw.get("times")
        if times is not None and (not _is_int(times) or times < 0):
            raise FaultSpecError("rule times must be a non-negative integer")
        return cls(
            status=status,
            distribution_id=_optional_str(raw, "distribution_id"),
            consumer_id=_optional_str(raw, "consumer_id"),
            retry_after=None if retry_after is None else float(retry_after),
            times=times,
            timeout=_flag(raw, "timeout"),
            fail_after_complete=_flag(raw, "fail_after_complete"),
            body=copy.deepcopy(raw.get("body")),
        )


@dataclass
class Faults:
    error_rate: float = 0.0
    latency_ms: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "latency_ms": self.latency_ms,
            "rules": [rule.to_json() for rule in self.rules],
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, raw: object) -> Faults:
        if not isinstance(raw, Mapping):
            raise FaultSpecError("the fault document must be a JSON object")
        unknown = set(raw) - {"error_rate", "latency_ms", "rules", "seed"}
        if unknown:
            raise FaultSpecError(f"unknown fault fields: {sorted(unknown)}")
        error_rate = raw.get("error_rate", 0.0)
        if not _is_number(error_rate) or not 0.0 <= error_rate <= 1.0:
            raise FaultSpecError("error_rate must be a number between 0.0 and 1.0")
        latency_ms = raw.get("latency_ms", 0)
        if not _is_int(latency_ms) or latency_ms < 0:
            raise FaultSpecError("latency_ms must be a non-negative integer")
        rules = raw.get("rules", [])
        if not isinstance(rules, list):
            raise FaultSpecError("rules must be a list")
        seed = raw.get("seed")
        if seed is not None and not _is_int(seed):
            raise FaultSpecError("seed must be an integer")
        return cls(
            error_rate=float(error_rate),
            latency_ms=latency_ms,
            rules=[FaultRule.from_json(rule) for rule in rules],
            seed=seed,
        )


def _is_int(value: object) -> bool:
    # bool is an int subclass, and `"times": true` is certainly a mistake.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional_str(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise FaultSpecError(f"rule {key} must be a string")


def _flag(raw: Mapping[str, object], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise FaultSpecError(f"rule {key} must be true or false")
    return value


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class InjectedFault:
    status: int
    label: str
    rule: FaultRule | None = None


def choose_fault(
    faults: Faults, dice: random.Random, distribution_id: str, consumer_id: str
) -> tuple[InjectedFault | None, bool]:
    """The first matching rule, else the random error rate, else None; and whether a rule's `times` was used
    up (the caller must then store `faults`, which this mutates)."""
    for rule in faults.rules:
        if rule.matches(distribution_id, consumer_id):
            if rule.times is not None:
                rule.times -= 1
            label = "timeout" if rule.timeout else f"rule:{rule.status}"
            if rule.fail_after_complete:
                label = f"fail_after_complete:{label}"
            return InjectedFault(rule.status, label, rule), rule.times is not None
    if faults.error_rate > 0 and dice.random() < faults.error_rate:
        status = dice.choice(_RANDOM_ERROR_STATUSES)
        return InjectedFault(status, f"error_rate:{status}"), False
    return None, False


# ---------------------------------------------------------------------------------------------- state
class SandboxStore(Protocol):
    """Where the sandbox keeps what it was sent and what it was told. Every method is safe to call from
    concurrent requests (threads locally, separate Lambda instances deployed)."""

    def allocate_request_id(self) -> int: ...

    def record(self, entry: RecordedRequest) -> None: ...

    def annotate(self, entry: RecordedRequest, *, status: int | None, fault: str | None) -> None: ...

    def faults(self) -> Faults: ...

    def set_faults(self, faults: Faults) -> None: ...

    def pick_fault(self, distribution_id: str, consumer_id: str) -> InjectedFault | None: ...

    def complete(
        self,
        distribution_type: str,
        distribution_id: str,
        consumer_id: str,
        metadata: dict[str, Any] | None,
        request_id: int,
    ) -> tuple[RecordedCompletion, bool]:
        """Record a completion once; returns (the completion, whether this call was the first)."""
        ...

    def repeat_completion(self) -> RepeatCompletion: ...

    def set_repeat_completion(self, mode: RepeatCompletion) -> None: ...

    def reset(self) -> None:
        """Forget requests, completions and faults; settings go back to their defaults."""
        ...

    def requests(self) -> list[RecordedRequest]: ...

    def completions(self) -> list[RecordedCompletion]: ...


class MemoryStore:
    """In-process state behind one lock (the local sandbox's requests are concurrent threads)."""

    def __init__(self, repeat_completion: RepeatCompletion = "conflict") -> None:
        self._lock = threading.Lock()
        self._default_repeat_completion: RepeatCompletion = repeat_completion
        self._repeat_completion: RepeatCompletion = repeat_completion
        self._faults = Faults()
        self._dice = random.Random()  # noqa: S311 - fault dice, not cryptography
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDS)
        self._completions: dict[tuple[str, str, str], RecordedCompletion] = {}
        self._next_request_id = 1

    def allocate_request_id(self) -> int:
        with self._lock:
            request_id = self._next_request_id
            self._next_request_id += 1
            return request_id

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(entry)

    def annotate(self, entry: RecordedRequest, *, status: int | None, fault: str | None) -> None:
        # Under the lock because snapshots deep-copy the same dicts from other threads.
        with self._lock:
            entry["status"] = status
            entry["fault"] = fault

    def faults(self) -> Faults:
        with self._lock:
            return copy.deepcopy(self._faults)

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            if faults.seed is not None:
                self._dice.seed(faults.seed)

    def pick_fault(self, distribution_id: str, consumer_id: str) -> InjectedFault | None:
        with self._lock:
            fault, _ = choose_fault(self._faults, self._dice, distribution_id, consumer_id)
            return fault

    def complete(
        self,
        distribution_type: str,
        distribution_id: str,
        consumer_id: str,
        metadata: dict[str, Any] | None,
        request_id: int,
    ) -> tuple[RecordedCompletion, bool]:
        key = (distribution_type, distribution_id, consumer_id)
        with self._lock:
            existing = self._completions.get(key)
            if existing is not None:
                return copy.deepcopy(existing), False
            completion: RecordedCompletion = {
                "distribution_type": distribution_type,
                "distribution_id": distribution_id,
                "consumer_id": consumer_id,
                "metadata": metadata,
                "completed_at": now_iso(),
                "request_id": request_id,
            }
            self._completions[key] = completion
            return copy.deepcopy(completion), True

    def repeat_completion(self) -> RepeatCompletion:
        with self._lock:
            return self._repeat_completion

    def set_repeat_completion(self, mode: RepeatCompletion) -> None:
        with self._lock:
            self._repeat_completion = mode

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._completions.clear()
            self._faults = Faults()
            self._repeat_completion = self._default_repeat_completion

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return copy.deepcopy(list(self._requests))

    def completions(self) -> list[RecordedCompletion]:
        with self._lock:
            return copy.deepcopy(list(self._completions.values()))


class SandboxCredentials(Protocol):
    """The one org id and secret key the sandbox accepts."""

    @property
    def org_id(self) -> str: ...

    @property
    def secret_key(self) -> str: ...

    def refresh(self) -> bool:
        """Re-read them if they may have changed (a rotation); True when a re-read happened."""
        ...


@dataclass(frozen=True)
class StaticCredentials:
    org_id: str
    secret_key: str

    def refresh(self) -> bool:
        return False


# ---------------------------------------------------------------------------------------------- the contract
@dataclass(frozen=True)
class SandboxResponse:
    """What to answer. `hang_up`: the timeout fault — the client must get no answer at all (the HTTP server
    drops the connection; Lambda, which cannot, answers 504 long after the client gave up)."""

    status: int
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    hang_up: bool = False

    def body(self) -> bytes:
        return json.dumps(self.payload).encode()


class SandboxApp:
    """The sandbox as a function of the request: `handle(method, path, headers, body) -> SandboxResponse`.

    `wait(seconds)` sleeps for latency and timeout faults (the local server passes an Event's wait, so
    stopping wakes every held request at once).
    """

    def __init__(
        self,
        store: SandboxStore,
        credentials: SandboxCredentials,
        *,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
        wait: Callable[[float], object] = time.sleep,
        control_requires_auth: bool = False,
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.hold_seconds = hold_seconds
        self._wait = wait
        self._control_requires_auth = control_requires_auth

    # --- secrets never leave -------------------------------------------------------------------------------

    def redact(self, value: str) -> str:
        key = self.credentials.secret_key
        return value.replace(key, _REDACTED) if key else value

    def scrub(self, value: Any) -> Any:
        """A deep copy of a parsed body with any occurrence of the secret key removed."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {self.redact(str(key)): self.scrub(item) for key, item in value.items()}
        return value

    def is_authorised(self, headers: Mapping[str, str]) -> bool:
        """Either auth style; `headers` has lower-case names. A rotated key is re-read before refusing."""
        if self._matches(headers):
            return True
        return self.credentials.refresh() and self._matches(headers)

    def _matches(self, headers: Mapping[str, str]) -> bool:
        expected_org, expected_key = self.credentials.org_id, self.credentials.secret_key
        if not expected_key:
            return False  # an unset key must never match an empty header
        org_id = headers.get("x-organization-id")
        key = headers.get("x-secret-key")
        if (
            org_id is not None
            and key is not None
            and _same(org_id, expected_org)
            and _same(key, expected_key)
        ):
            return True
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and _same(token.strip(), expected_key)

    # --- dispatch ------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> SandboxResponse:
        method = method.upper()
        path = urlsplit(path).path
        lower = {name.lower(): value for name, value in headers.items()}
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return self._control(method, path, lower, body)
        return self._api(method, path, headers, lower, body)

    def _api(
        self, method: str, path: str, headers: Mapping[str, str], lower: Mapping[str, str], raw: bytes
    ) -> SandboxResponse:
        request_id = self.store.allocate_request_id()
        entry: RecordedRequest = {
            "id": request_id,
            "received_at": now_iso(),
            "method": method,
            "path": self.redact(path),
            "headers": {
                name: _REDACTED if name.lower() in _SECRET_HEADERS else self.redact(value)
                for name, value in headers.items()
            },
            "body": self.scrub(_parse_json(raw)),
            "status": None,
            "fault": None,
        }
        # Recorded on arrival (a request held by a timeout fault is visible while it is held); the status
        # is filled in just before the answer is returned, so a client that has its answer also finds it
        # recorded, and stays None if the connection is dropped.
        self.store.record(entry)
        return self._answer_completion(entry, method, path, lower, raw)

    def _reply(
        self,
        entry: RecordedRequest,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        fault: str | None = None,
    ) -> SandboxResponse:
        self.store.annotate(entry, status=status, fault=fault)
        # X-Request-Id is what Fanfare's error docs say to log (fanfare-api.md §3.1); it ties client logs to
        # `GET /_sandbox/requests` entries here.
        request_id = {"X-Request-Id": f"req_sandbox_{entry['id']}"}
        return SandboxResponse(status, payload, {**request_id, **(headers or {})})

    def _answer_completion(
        self, entry: RecordedRequest, method: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> SandboxResponse:
        match = _COMPLETE_PATH.fullmatch(path)
        if match is None:
            return self._reply(entry, 404, {"error": "not_found", "message": f"No route for {method} {path}"})
        if method != "POST":
            return self._reply(
                entry, 405, {"error": "method_not_allowed", "message": "Use POST"}, {"Allow": "POST"}
            )
        latency_ms = self.store.faults().latency_ms
        if latency_ms:
            self._wait(latency_ms / 1000.0)
        if not self.is_authorised(headers):
            return self._reply(
                entry, 401, {"error": "unauthorized", "message": "Invalid or missing credentials"}
            )
        body = _parse_json(raw)
        issues = _validate_completion_body(body)
        if issues:
            return self._reply(entry, 400, {"error": "validation_error", "issues": issues})

        distribution_type = SEGMENT_TO_TYPE[match.group(1)]
        distribution_id = unquote(match.group(2))
        consumer_id: str = body["consumerId"]
        fault = self.store.pick_fault(distribution_id, consumer_id)
        rule = fault.rule if fault else None
        if fault is not None and not (rule and rule.fail_after_complete):
            # Applied before the completion is recorded: a faulted request does not complete the admission.
            return self._inject(entry, fault)

        metadata = body.get("metadata")
        completion, first = self.store.complete(
            distribution_type,
            distribution_id,
            consumer_id,
            self.scrub(metadata) if isinstance(metadata, dict) else None,
            entry["id"],
        )
        if fault is not None:
            # "Fanfare completed it but the answer was lost": the exactly-once case.
            return self._inject(entry, fault)
        payload = {
            "status": "COMPLETED",
            "completedAt": completion["completed_at"],
            "consumerId": consumer_id,
            "distributionId": distribution_id,
        }
        if first or self.store.repeat_completion() == "ok":
            return self._reply(entry, 200, payload)
        return self._reply(
            entry, 409, {"error": "already_completed", "message": "Admission already completed"}
        )

    def _inject(self, entry: RecordedRequest, fault: InjectedFault) -> SandboxResponse:
        rule = fault.rule
        if rule is not None and rule.timeout:
            # Hold past any client timeout, then hang up without an answer.
            self.store.annotate(entry, status=None, fault=fault.label)
            self._wait(self.hold_seconds)
            return SandboxResponse(504, {"error": "timeout", "message": "Injected timeout"}, hang_up=True)
        headers: dict[str, str] = {}
        if rule is not None and rule.retry_after is not None:
            # RFC 9110 delta-seconds are whole numbers; round up so the client never retries early.
            headers["Retry-After"] = str(math.ceil(rule.retry_after))
        body = rule.body if rule is not None and rule.body is not None else _fault_body(fault.status)
        return self._reply(entry, fault.status, body, headers, fault=fault.label)

    # --- control API ---------------------------------------------------------------------------------------

    def _control(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> SandboxResponse:
        """`/_sandbox/...`: inspect records, reset, and set faults and settings over HTTP."""
        store = self.store
        routes: dict[tuple[str, str], Callable[[bytes], tuple[int, Any]]] = {
            ("GET", _HEALTH_PATH): lambda _: (200, {"status": "ok"}),
            ("GET", "/_sandbox/requests"): lambda _: (200, {"requests": store.requests()}),
            ("GET", "/_sandbox/completions"): lambda _: (200, {"completions": store.completions()}),
            ("POST", "/_sandbox/reset"): self._reset,
            ("GET", "/_sandbox/faults"): lambda _: (200, store.faults().to_json()),
            ("PUT", "/_sandbox/faults"): self._put_faults,
            ("DELETE", "/_sandbox/faults"): self._delete_faults,
            ("GET", "/_sandbox/settings"): lambda _: (200, self._settings()),
            ("PUT", "/_sandbox/settings"): self._put_settings,
        }
        route_path = path.rstrip("/")
        route = routes.get((method, route_path))
        if route is None:
            known = any(known_path == route_path for _, known_path in routes)
            status = 405 if known else 404
            return SandboxResponse(status, {"error": "not_found" if status == 404 else "method_not_allowed"})
        if self._control_requires_auth and route_path != _HEALTH_PATH and not self.is_authorised(headers):
            # Deployed, the control API could reset or poison a shared staging sandbox: same keys as the API.
            return SandboxResponse(
                401, {"error": "unauthorized", "message": "Invalid or missing credentials"}
            )
        try:
            status, payload = route(raw)
        except FaultSpecError as exc:
            status, payload = 400, {"error": "invalid_request", "message": str(exc)}
        return SandboxResponse(status, payload)

    def _reset(self, _raw: bytes) -> tuple[int, Any]:
        self.store.reset()
        return 200, {"status": "reset"}

    def _put_faults(self, raw: bytes) -> tuple[int, Any]:
        self.store.set_faults(Faults.from_json(_control_json(raw)))
        return 200, self.store.faults().to_json()

    def _delete_faults(self, _raw: bytes) -> tuple[int, Any]:
        self.store.set_faults(Faults())
        return 200, self.store.faults().to_json()

    def _settings(self) -> dict[str, Any]:
        return {"repeat_completion": self.store.repeat_completion()}

    def _put_settings(self, raw: bytes) -> tuple[int, Any]:
        apply_settings(self.store, _control_json(raw))
        return 200, self._settings()


def _same(given: str, expected: str) -> bool:
    # Constant time, like a real server should; bytes because compare_digest refuses non-ASCII str.
    return hmac.compare_digest(given.encode(), expected.encode())


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        # Kept as text (bounded) so a recorded request still shows what was sent.
        return raw[:2048].decode("utf-8", errors="replace")


def _control_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        raise FaultSpecError("the body must be JSON") from None


def apply_settings(store: SandboxStore, raw: object) -> None:
    if not isinstance(raw, Mapping) or set(raw) - {"repeat_completion"}:
        raise FaultSpecError('settings must be {"repeat_completion": "conflict" | "ok"}')
    mode = raw.get("repeat_completion", store.repeat_completion())
    if mode not in ("conflict", "ok"):
        raise FaultSpecError('repeat_completion must be "conflict" (409) or "ok" (200 COMPLETED)')
    store.set_repeat_completion(cast(RepeatCompletion, mode))


def _validate_completion_body(body: Any) -> list[dict[str, Any]]:
    """Issues in the shape of Fanfare's 400 `validation_error` (fanfare-api.md §1.3), empty when valid."""
    if not isinstance(body, dict):
        return [_issue([], "object", type(body).__name__, "Invalid type: Expected Object")]
    issues = []
    consumer_id = body.get("consumerId")
    if not isinstance(consumer_id, str) or not consumer_id:
        received = "missing" if "consumerId" not in body else type(consumer_id).__name__
        issues.append(_issue(["consumerId"], "non-empty string", received, "consumerId is required"))
    if "metadata" in body and not isinstance(body["metadata"], dict):
        metadata_type = type(body["metadata"]).__name__
        issues.append(_issue(["metadata"], "object", metadata_type, "Invalid type: Expected Object"))
    return issues


def _issue(path: list[str], expected: str, received: str, message: str) -> dict[str, Any]:
    return {
        "kind": "schema",
        "type": expected,
        "expected": expected,
        "received": received,
        "message": message,
        "path": [{"type": "object", "origin": "value", "key": key} for key in path],
    }


def _fault_body(status: int) -> dict[str, Any]:
    # The documented error shapes (fanfare-api.md §3.1), so the client parses what Fanfare would send.
    if status == 429:
        return {"error": "rate_limited", "message": "Too many requests"}
    if status in {401, 403}:
        return {"error": "unauthorized", "message": "Secret key required"}
    if status == 404:
        return {"error": "not_found", "message": "Distribution not found"}
    if status >= 500:
        return {"error": "internal_error", "message": "Injected server error", "requestId": "sandbox"}
    if status >= 300:
        return {"error": "injected_fault", "message": f"Injected fault {status}"}
    return {"status": "COMPLETED"}


# ---------------------------------------------------------------------------------------------- HTTP server
class _SandboxHTTPServer(ThreadingHTTPServer):
    # Handler threads never block interpreter exit; stop() also wakes and disconnects them explicitly.
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        self.app = app
        self.connections_lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _SandboxHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (reverse DNS), which can stall for seconds on a
        # machine without DNS; the name is only used in CGI environments, so skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr for every reset connection; a client that timed out
        # and hung up is routine here (that is what timeout faults do).
        LOG.debug("sandbox connection error from %s", client_address, exc_info=True)


class _SandboxHandler(BaseHTTPRequestHandler):
    """Bytes in, bytes out: everything in between is `SandboxApp.handle`."""

    # HTTP/1.1 keep-alive, so the client's connection pool is exercised as it is against Fanfare.
    protocol_version = "HTTP/1.1"
    server_version = "FanfareSandbox/1"
    timeout = _IDLE_CONNECTION_SECONDS
    # Headers and body go out as two writes; without TCP_NODELAY, Nagle plus the client's delayed ACK adds
    # ~40 ms to every keep-alive answer, which would distort latency measurements made against the sandbox.
    disable_nagle_algorithm = True

    @property
    def sandbox_server(self) -> _SandboxHTTPServer:
        return cast(_SandboxHTTPServer, self.server)

    def setup(self) -> None:
        super().setup()
        with self.sandbox_server.connections_lock:
            self.sandbox_server.connections.add(self.connection)

    def finish(self) -> None:
        with self.sandbox_server.connections_lock:
            self.sandbox_server.connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the peer is gone; nothing left to flush to
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines and status codes only (never headers), and redacted in case a path carries the key.
        LOG.info("%s %s", self.address_string(), self.sandbox_server.app.redact(format % args))

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        response = self.sandbox_server.app.handle(self.command, self.path, dict(self.headers.items()), raw)
        if response.hang_up:
            self.close_connection = True
            return
        self._send(response.status, response.body(), response.headers)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            # http.server does not decode chunked bodies; every real client here sends Content-Length.
            self._send(411, SandboxResponse(411, _LENGTH_REQUIRED).body())
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send(413 if length > 0 else 400, SandboxResponse(400, _BAD_LENGTH).body())
            self.close_connection = True  # the unread body would corrupt the next request on this connection
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The client gave up (its timeout fired) before we answered: nothing to do but drop it.
            self.close_connection = True


_LENGTH_REQUIRED: Final = {"error": "length_required", "message": "Send a Content-Length body"}
_BAD_LENGTH: Final = {"error": "bad_request", "message": "Bad Content-Length"}


class FanfareSandbox:
    """The sandbox server on a background thread. `port=0` picks a free port; read `base_url` after start.

    The Python methods mirror the control API, so in-process tests need no HTTP to arrange faults.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        org_id: str = DEFAULT_ORG_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        *,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
        repeat_completion: RepeatCompletion = "conflict",
    ) -> None:
        if not secret_key:
            raise ValueError("secret_key must not be empty")
        self.host = host
        self.port = port
        self.org_id = org_id
        # Set by stop(): wakes latency sleeps and held (timeout-fault) requests so shutdown is prompt.
        self._stopping = threading.Event()
        self._store = MemoryStore(repeat_completion)
        self._app = SandboxApp(
            self._store,
            StaticCredentials(org_id, secret_key),
            hold_seconds=hold_seconds,
            wait=self._stopping.wait,
        )
        self._server: _SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    def __repr__(self) -> str:
        # The secret key is never shown, even though it is only the sandbox's.
        return f"FanfareSandbox(host={self.host!r}, port={self.port!r}, org_id={self.org_id!r})"

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._base_url

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Bind, serve on a daemon thread, and return the base URL (`http://host:port`)."""
        if self._server is not None:
            return self.base_url
        self._stopping.clear()
        server = _SandboxHTTPServer((self.host, self.port), self._app)
        self.port = int(server.server_address[1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._base_url = f"http://{host}:{self.port}"
        # A short poll interval makes shutdown() return quickly.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fanfare-sandbox", daemon=True
        )
        self._server = server
        self._thread.start()
        LOG.info("Fanfare sandbox listening on %s (org %s)", self._base_url, self.org_id)
        return self._base_url

    def stop(self) -> None:
        """Stop serving and disconnect everyone, promptly even while a timeout fault holds a request."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            # Wakes handler threads blocked reading an idle keep-alive connection.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- control, in process ----------------------------------------------------------------------------

    def set_faults(self, spec: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Replace the fault document (same shape as `PUT /_sandbox/faults`); returns it as stored."""
        self._store.set_faults(Faults.from_json({**(spec or {}), **fields}))
        return self.faults()

    def clear_faults(self) -> None:
        self._store.set_faults(Faults())

    def faults(self) -> dict[str, Any]:
        return self._store.faults().to_json()

    def set_repeat_completion(self, mode: RepeatCompletion) -> None:
        """`"conflict"`: a repeat gets 409 already_completed; `"ok"`: a repeat gets 200 COMPLETED again."""
        apply_settings(self._store, {"repeat_completion": mode})

    def reset(self) -> None:
        """Forget requests, completions and faults; settings go back to the constructor's."""
        self._store.reset()

    def requests(self) -> list[RecordedRequest]:
        return self._store.requests()

    def completions(self) -> list[RecordedCompletion]:
        return self._store.completions()

"""HTTP adapter for Fanfare's admission-completion API — the only module of the layer that imports httpx.

`FanfareClient.complete_admission` turns a `CompletionRequest` into
`POST {base_url}/{queues|draws|auctions|timed-releases}/{id}/complete` and turns whatever comes back
(an answer, a timeout, a dead connection) into a `CompletionResult`. It never raises for HTTP or network
outcomes: the consumer decides what to do from the result's `outcome`, so a Fanfare outage can never
surface as an unhandled exception that fails a whole SQS batch.

The contract is undocumented in places (fanfare-api.md §1.2, §1.8, §7), hence the tolerant reading of
bodies below: two auth styles, "already completed" recognised from a 409 or from the wording of any 4xx,
and Retry-After as seconds, HTTP date or ISO timestamp.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from ipaddress import ip_address
from types import TracebackType
from typing import Final, Literal, Self
from urllib.parse import quote

import httpx
from pydantic_core import InitErrorDetails, ValidationError

from fanfare_sync.models.fanfare import (
    CompletionOutcome,
    CompletionRequest,
    CompletionResult,
    DistributionType,
    validate_path_id,
)

AuthStyle = Literal["headers", "bearer"]

USER_AGENT: Final = "fanfare-sync/0.1 (+admission-completion)"
# Retry-After beyond a day is not a useful hint (SQS cannot delay a message past 12 h anyway); it is
# treated as noise rather than parked for a week.
MAX_RETRY_AFTER_SECONDS: Final = 86_400.0
# 4xx answers that say "not now" rather than "never": 408 request timeout, 423 locked (documented with a
# Retry-After for "Queue is not open yet", fanfare-api.md §3.1), 425 too early, 429 rate limited.
RETRYABLE_CLIENT_STATUSES: Final = frozenset({408, 423, 425, 429})
AUTH_STATUSES: Final = frozenset({401, 403})
# Only this much of a non-JSON error body is scanned for a reason: a proxy's HTML error page can be large.
_MAX_BODY_SCAN: Final = 4096
_WORDS_SEPARATORS: Final = re.compile(r"[\s_\-]+")
_DELTA_SECONDS: Final = re.compile(r"^\d+(\.\d+)?$")
_REDACTED: Final = "[redacted]"


@dataclass(frozen=True, slots=True)
class FanfareTimeouts:
    """Per-phase timeouts in seconds.

    The worst case per call (connect, one connect retry, write, read, pool wait: about 16 s) has to stay
    well under the consumer Lambda's timeout, so a slow Fanfare yields a retryable result for one record
    instead of a killed invocation that redelivers the whole batch.
    """

    connect: float = 2.0
    read: float = 5.0
    write: float = 5.0
    pool: float = 2.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class SecretString:
    """A secret that `repr`, `str` and logs show as `**********`; `get_secret_value()` gives it back."""

    __slots__ = ("_value",)

    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def get_secret_value(self) -> str:
        return self._value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecretString is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretString):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other.get_secret_value().encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "SecretString('**********')"

    def __str__(self) -> str:
        return "**********"


class FanfareCredentials:
    """Fanfare org id and secret key. `repr`/`str` show the secret as `**********`.

    Invalid values raise pydantic's `ValidationError` naming the field and the rule, never the value: such
    errors end up in logs, and the rejected input may be the secret itself.
    """

    __slots__ = ("org_id", "secret_key")

    org_id: str
    secret_key: SecretString

    # `object`: the values come from a JSON secret, whatever its author put there; they are checked here.
    def __init__(self, *, org_id: str | object, secret_key: str | SecretString | object) -> None:
        problems: list[InitErrorDetails] = []
        org = org_id
        # Values set through the console or `aws secretsmanager put-secret-value --secret-string file://`
        # often carry a trailing newline; a header cannot, and a stray space would be an auth failure that
        # looks like a wrong key.
        if not isinstance(org, str):
            problems.append({"type": "string_type", "loc": ("org_id",), "input": org})
        else:
            org = org.strip()
            if not 1 <= len(org) <= 200:
                problems.append(_problem("org_id", "org_id must be 1 to 200 characters"))
            elif not _is_header_token(org):
                problems.append(_problem("org_id", "org_id must be printable ASCII without whitespace"))
        raw = secret_key.get_secret_value() if isinstance(secret_key, SecretString) else secret_key
        if not isinstance(raw, str):
            problems.append(_problem("secret_key", "secret_key must be a string"))
        else:
            raw = raw.strip()
            if not raw:
                problems.append(_problem("secret_key", "secret_key must not be empty"))
            elif not _is_header_token(raw):
                problems.append(
                    _problem("secret_key", "secret_key must be printable ASCII without whitespace")
                )
        if problems or not isinstance(raw, str):
            raise ValidationError.from_exception_data(type(self).__name__, problems, hide_input=True)
        object.__setattr__(self, "org_id", org)
        object.__setattr__(self, "secret_key", SecretString(raw))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("FanfareCredentials is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FanfareCredentials):
            return NotImplemented
        return (self.org_id, self.secret_key) == (other.org_id, other.secret_key)

    def __hash__(self) -> int:
        return hash((self.org_id, self.secret_key))

    def __repr__(self) -> str:
        return f"FanfareCredentials(org_id={self.org_id!r}, secret_key={self.secret_key!r})"


def _problem(field: str, message: str) -> InitErrorDetails:
    # The message never quotes the value (it may be the secret); the input is hidden from the error too.
    return {"type": "value_error", "loc": (field,), "input": None, "ctx": {"error": ValueError(message)}}


def _is_header_token(value: str) -> bool:
    # Printable ASCII without spaces: anything else either breaks the header (CR/LF) or cannot be right.
    return value.isascii() and all(character.isprintable() and not character.isspace() for character in value)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header, or None when it is absent or unusable.

    RFC 9110 allows delta seconds or an HTTP date; Fanfare's error page also shows an ISO timestamp
    (fanfare-api.md §3.1). A date in the past means "now" (0). Garbage is ignored rather than trusted.
    `now` is the wall clock in epoch seconds (injectable so tests do not depend on the real time).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        moment = _parse_date(text)
        if moment is None:
            return None
        seconds = moment.timestamp() - now
    if not math.isfinite(seconds) or seconds > MAX_RETRY_AFTER_SECONDS:
        return None
    return max(0.0, seconds)


def _parse_date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        # HTTP dates are GMT by definition; a naive ISO value is read the same way rather than as local time.
        moment = moment.replace(tzinfo=UTC)
    return moment


@dataclass(frozen=True, slots=True)
class _Verdict:
    outcome: CompletionOutcome
    reason: str
    retry_after_seconds: float | None = None
    misconfiguration: bool = False
    remote_status: str | None = None


def _parse_body(content: bytes) -> object | None:
    if not content:
        return None
    try:
        parsed: object = json.loads(content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return parsed


def _detail(body: object | None, content: bytes) -> str:
    """The human part of an answer: `error` and `message` (also nested, plus the first validation issue),
    else the start of the raw text."""
    if isinstance(body, Mapping):
        fields: Mapping[str, object] = body
        error = fields.get("error")
        if isinstance(error, Mapping):  # {"error": {"code": ..., "message": ...}} style
            fields = error
            error = error.get("code") or error.get("type")
        message = fields.get("message") or fields.get("detail") or fields.get("title")
        parts = [part for part in (error, message) if isinstance(part, str) and part]
        issues = fields.get("issues") or fields.get("details")
        if isinstance(issues, list) and issues and isinstance(issues[0], Mapping):
            first = issues[0].get("message")
            if isinstance(first, str) and first:
                parts.append(first)
        if parts:
            return ": ".join(dict.fromkeys(parts))  # dedupe while keeping order
    return content[:_MAX_BODY_SCAN].decode("utf-8", errors="replace")


def _says_already_completed(body: object | None, detail: str) -> bool:
    flag = body.get("alreadyCompleted") if isinstance(body, Mapping) else None
    if flag is True:
        return True
    # "already completed", "Already_Completed", "ALREADY-COMPLETED": the guide only promises the words.
    return "already completed" in _WORDS_SEPARATORS.sub(" ", detail).lower()


def _remote_status(body: object | None) -> str | None:
    status = body.get("status") if isinstance(body, Mapping) else None
    return status if isinstance(status, str) and status else None


def _classify_success(status_code: int, body: object | None, content: bytes) -> _Verdict:
    remote_status = _remote_status(body)
    explicit_failure = isinstance(body, Mapping) and body.get("success") is False
    if explicit_failure or (remote_status or "").upper() == "DENIED":
        # A 2xx that states the completion did not happen (timed release `success: false`, a DENIED
        # consumer) will not change on retry; marking the order synced would hide it from the operator.
        return _Verdict(
            CompletionOutcome.PERMANENT,
            f"HTTP {status_code} but Fanfare did not complete: {remote_status or 'success=false'}",
            remote_status=remote_status,
        )
    # Only the message fields of a JSON body are read here: a success body echoes our own ids, and the raw
    # text of it must not be mistaken for a statement.
    wording = _detail(body, b"") if isinstance(body, Mapping) else _detail(None, content)
    if _says_already_completed(body, wording):
        return _Verdict(
            CompletionOutcome.ALREADY_COMPLETED,
            f"HTTP {status_code}: already completed",
            remote_status=remote_status,
        )
    suffix = f" ({remote_status})" if remote_status else ""
    return _Verdict(CompletionOutcome.COMPLETED, f"HTTP {status_code}{suffix}", remote_status=remote_status)


def _retry_after(headers: httpx.Headers, body: object | None, now: float) -> float | None:
    from_header = parse_retry_after(headers.get("retry-after"), now=now)
    if from_header is not None:
        return from_header
    # The documented 429 body also carries `retryAfter` in seconds (fanfare-api.md §3.2).
    hint = body.get("retryAfter") if isinstance(body, Mapping) else None
    if isinstance(hint, int | float) and not isinstance(hint, bool):
        return parse_retry_after(str(hint), now=now)
    return None


def _classify_response(status_code: int, headers: httpx.Headers, content: bytes, *, now: float) -> _Verdict:
    """Map one HTTP answer to an outcome (the table in DESIGN.md "Completion")."""
    body = _parse_body(content)
    if 200 <= status_code < 300:
        return _classify_success(status_code, body, content)
    detail = _detail(body, content)
    if 400 <= status_code < 500:
        return _classify_client_error(status_code, headers, body, detail, now)
    if status_code >= 500:
        return _Verdict(
            CompletionOutcome.RETRYABLE, f"HTTP {status_code}: {detail}", _retry_after(headers, body, now)
        )
    if 300 <= status_code < 400:
        # Redirects are not followed: httpx would drop `Authorization` on a cross-origin hop but not
        # `X-Secret-Key`. A redirect means FANFARE_API_URL is wrong, which affects every order.
        return _Verdict(
            CompletionOutcome.RETRYABLE,
            f"HTTP {status_code} redirect not followed (check FANFARE_API_URL)",
            misconfiguration=True,
        )
    return _Verdict(CompletionOutcome.RETRYABLE, f"unexpected HTTP status {status_code}")


def _classify_client_error(
    status_code: int, headers: httpx.Headers, body: object | None, detail: str, now: float
) -> _Verdict:
    if status_code not in {401, 429} and _says_already_completed(body, detail):
        # The guide's only promise is the wording ("already completed"), whatever the status — even a 403,
        # which some APIs use for "this admission is used up". A 401 is about credentials whatever it says.
        return _Verdict(CompletionOutcome.ALREADY_COMPLETED, f"HTTP {status_code}: {detail}")
    if status_code in AUTH_STATUSES:
        # Retryable, not permanent: with wrong credentials every order would otherwise go to the DLQ in
        # seconds. The flag lets the consumer alarm; messages wait until someone fixes the secret.
        return _Verdict(
            CompletionOutcome.RETRYABLE,
            f"HTTP {status_code}: {detail} (check the Fanfare org id, secret key and auth style)",
            misconfiguration=True,
        )
    if status_code == 409:
        # `concurrent_modification` is a documented 409 value that means "try again", not "done"; any
        # other conflict on a completion can only be the admission being completed already.
        if "concurrent modification" in _WORDS_SEPARATORS.sub(" ", detail).lower():
            return _Verdict(
                CompletionOutcome.RETRYABLE, f"HTTP 409: {detail}", _retry_after(headers, body, now)
            )
        return _Verdict(CompletionOutcome.ALREADY_COMPLETED, f"HTTP 409: {detail}")
    if status_code in RETRYABLE_CLIENT_STATUSES:
        return _Verdict(
            CompletionOutcome.RETRYABLE, f"HTTP {status_code}: {detail}", _retry_after(headers, body, now)
        )
    # Validation, unknown distribution, consumer mismatch: the same request will fail the same way.
    return _Verdict(CompletionOutcome.PERMANENT, f"HTTP {status_code}: {detail}")


class FanfareClient:
    """Completes Fanfare admissions over one pooled HTTP client.

    Build it once per Lambda container (module scope) and reuse it: connections stay open between
    invocations, saving a TLS handshake per completion. It is safe to share between threads — the
    consumer completes a batch's records concurrently — because each call only reads immutable state and
    httpx's connection pool is guarded by locks; the cookie jar, the one piece of shared mutable state in
    an httpx client, is switched off.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credentials: FanfareCredentials,
        auth_style: AuthStyle = "headers",
        timeouts: FanfareTimeouts | None = None,
        max_connections: int = 20,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], float] = time.time,
        allow_insecure_http: bool = False,
    ) -> None:
        if auth_style not in ("headers", "bearer"):
            raise ValueError("auth_style must be 'headers' or 'bearer'")
        if max_connections < 10:
            # A batch of 10 records completes concurrently; fewer connections would queue them on the pool.
            raise ValueError("max_connections must be at least 10")
        self._base_url = _normalise_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self._credentials = credentials
        self._auth_style: AuthStyle = auth_style
        self._wall_clock = wall_clock
        if transport is None:
            # One retry of the TCP/TLS connect only: nothing has been sent yet, so it cannot complete twice.
            # An explicit transport also means HTTP(S)_PROXY variables are not honoured: the secret-bearing
            # request goes straight to the configured URL.
            transport = httpx.HTTPTransport(
                retries=1,
                limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=10),
                verify=_tls_verification(self._base_url),
            )
        self._http = httpx.Client(
            transport=transport,
            timeout=(timeouts or FanfareTimeouts()).to_httpx(),
            follow_redirects=False,
            # A server-to-server API has no use for cookies, and a shared jar is mutable state across threads.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def auth_style(self) -> AuthStyle:
        return self._auth_style

    def __repr__(self) -> str:
        # Deliberately hand-written: the credentials object masks the key, but a future field should not
        # be able to leak through a generated repr either.
        return (
            f"FanfareClient(base_url={self._base_url!r}, auth_style={self._auth_style!r}, "
            f"org_id={self._credentials.org_id!r})"
        )

    def completion_url(self, distribution_type: DistributionType, distribution_id: str) -> str:
        # Percent-encode on top of the model's validation so an id can never become more than one segment.
        segment_id = quote(validate_path_id(distribution_id, "distribution_id"), safe="")
        return f"{self._base_url}/{distribution_type.path_segment}/{segment_id}/complete"

    def complete_admission(self, request: CompletionRequest) -> CompletionResult:
        """Send one completion and classify the answer. Raises only for a request that is itself invalid
        (`UnknownDistributionType`, `ValueError`) — before any HTTP call — never for what Fanfare or the
        network does."""
        # Parsed again on purpose: a request can be built around its checks (a test double, `__new__`), and
        # a wrong path segment would call a different endpoint.
        distribution_type = DistributionType.parse(request.distribution_type)
        url = self.completion_url(distribution_type, request.distribution_id)
        content = json.dumps(request.to_json_body(), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **self._auth_headers()}

        started = time.perf_counter()
        try:
            response = self._http.post(url, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            return self._result(
                _Verdict(CompletionOutcome.RETRYABLE, f"timeout calling Fanfare ({type(exc).__name__})"),
                None,
                started,
            )
        except httpx.RequestError as exc:
            # Connection refused/reset, DNS, TLS, a dropped response, an undecodable body: all transient
            # as far as this call can tell. The message is scrubbed in `_result`.
            return self._result(
                _Verdict(
                    CompletionOutcome.RETRYABLE,
                    f"network error calling Fanfare ({type(exc).__name__}: {exc})",
                ),
                None,
                started,
            )
        verdict = _classify_response(
            response.status_code, response.headers, response.content, now=self._wall_clock()
        )
        return self._result(verdict, response.status_code, started)

    def _auth_headers(self) -> dict[str, str]:
        # Built per request rather than stored as client defaults, so the secret never sits in the httpx
        # client's header map (which any debugging repr of the client would walk).
        secret = self._credentials.secret_key.get_secret_value()
        if self._auth_style == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        return {"X-Organization-Id": self._credentials.org_id, "X-Secret-Key": secret}

    def _result(self, verdict: _Verdict, status_code: int | None, started: float) -> CompletionResult:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        # A server (or proxy) may echo the credentials it was sent back in an error; the reason is logged
        # and stored, so the secret is taken out before it leaves this adapter.
        reason = verdict.reason.replace(self._credentials.secret_key.get_secret_value(), _REDACTED)
        return CompletionResult(
            outcome=verdict.outcome,
            status_code=status_code,
            reason=reason,
            retry_after_seconds=verdict.retry_after_seconds,
            misconfiguration=verdict.misconfiguration,
            elapsed_ms=max(0.0, elapsed_ms),
            remote_status=verdict.remote_status,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _tls_verification(base_url: str) -> ssl.SSLContext | bool:
    if base_url.startswith("https://"):
        return True  # httpx's default: certifi's CA bundle, hostname checks
    # Plain http (a loopback sandbox): no TLS is ever negotiated, as only base_url is called and redirects
    # are not followed. httpx would still load the whole CA bundle up front (20-40 ms of a cold start); a
    # bare client context, which trusts no CA at all, fails closed should TLS ever be attempted.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _normalise_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    url = httpx.URL(base_url.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("base_url must be an absolute http(s) URL")
    if url.query or url.fragment:
        raise ValueError("base_url must not carry a query or fragment")
    if url.scheme == "http" and not (allow_insecure_http or _is_loopback(url.host)):
        # The secret key travels in a header: plain HTTP is only acceptable to a local sandbox.
        raise ValueError("base_url must use https (plain http is allowed for loopback hosts only)")
    # Keep any path prefix (`https://consumer.fanfare.io/api`); drop the trailing slash so joins are exact.
    return str(url).rstrip("/")

"""FanfareClient against httpx.MockTransport: what goes on the wire, and how every answer is classified."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fanfare_sync.adapters.fanfare_api import (
    AuthStyle,
    FanfareClient,
    FanfareCredentials,
    parse_retry_after,
)
from fanfare_sync.models.fanfare import (
    CompletionMetadata,
    CompletionOutcome,
    CompletionRequest,
    CompletionResult,
    DistributionType,
    UnknownDistributionType,
)

BASE_URL = "https://api.fanfare.test"
ORG_ID = "org_123"
SECRET = "sk_test_5uper5ecretvalue"
# A fixed wall clock so HTTP-date Retry-After values are exact, not "about right".
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()

Handler = Callable[[httpx.Request], httpx.Response]


class RecordingTransport(httpx.MockTransport):
    """A MockTransport that remembers every request it was asked to send."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        super().__init__(record)


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, headers=headers)
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def make_client(
    handler: Handler, *, auth_style: AuthStyle = "headers"
) -> tuple[FanfareClient, RecordingTransport]:
    transport = RecordingTransport(handler)
    client = FanfareClient(
        base_url=BASE_URL,
        credentials=FanfareCredentials(org_id=ORG_ID, secret_key=SECRET),
        auth_style=auth_style,
        transport=transport,
        wall_clock=lambda: NOW,
    )
    return client, transport


def completion(distribution_type: str = "queue", **overrides: object) -> CompletionRequest:
    fields: dict[str, object] = {
        "distribution_id": "queue_01HXYZ",
        "distribution_type": distribution_type,
        "consumer_id": "cons_01HXYZ",
        "metadata": CompletionMetadata(
            orderId="5001",
            orderAmount="199.99",
            completedAt="2025-06-01T11:59:58.123Z",
            platform="shopify",
            itemCount=2,
            currency="EUR",
        ),
    }
    fields.update(overrides)
    return CompletionRequest.from_dict(fields)


def complete_with(handler: Handler, request: CompletionRequest | None = None) -> CompletionResult:
    client, _ = make_client(handler)
    with client:
        return client.complete_admission(request or completion())


# --- what goes on the wire ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distribution_type", "segment"),
    [
        ("queue", "queues"),
        ("draw", "draws"),
        ("auction", "auctions"),
        ("timed_release", "timed-releases"),
        ("Timed-Release", "timed-releases"),
    ],
)
def test_posts_to_the_completion_endpoint_of_each_distribution_type(
    distribution_type: str, segment: str
) -> None:
    client, transport = make_client(answer(200, {"status": "COMPLETED"}))

    with client:
        client.complete_admission(completion(distribution_type, distribution_id="dist_42"))

    (request,) = transport.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE_URL}/{segment}/dist_42/complete"


def test_keeps_the_base_url_path_prefix() -> None:
    transport = RecordingTransport(answer(200, {"status": "COMPLETED"}))
    credentials = FanfareCredentials(org_id=ORG_ID, secret_key=SECRET)
    with FanfareClient(
        base_url="https://consumer.fanfare.io/api/", credentials=credentials, transport=transport
    ) as client:
        client.complete_admission(completion())

    assert str(transport.requests[0].url) == "https://consumer.fanfare.io/api/queues/queue_01HXYZ/complete"


def test_headers_auth_style_sends_the_guides_org_and_secret_headers() -> None:
    client, transport = make_client(answer(200, {"status": "COMPLETED"}), auth_style="headers")

    with client:
        client.complete_admission(completion())

    headers = transport.requests[0].headers
    assert headers["X-Organization-Id"] == ORG_ID
    assert headers["X-Secret-Key"] == SECRET
    assert "Authorization" not in headers


def test_bearer_auth_style_sends_the_secret_key_as_a_bearer_token() -> None:
    client, transport = make_client(answer(200, {"status": "COMPLETED"}), auth_style="bearer")

    with client:
        client.complete_admission(completion())

    headers = transport.requests[0].headers
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert "X-Secret-Key" not in headers
    assert "X-Organization-Id" not in headers


def test_body_is_exactly_consumer_id_and_camel_case_metadata() -> None:
    client, transport = make_client(answer(200, {"status": "COMPLETED"}))

    with client:
        client.complete_admission(completion())

    request = transport.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.content)
    assert body == {
        "consumerId": "cons_01HXYZ",
        "metadata": {
            "orderId": "5001",
            "orderAmount": "199.99",
            "completedAt": "2025-06-01T11:59:58.123Z",
            "platform": "shopify",
            "itemCount": 2,
            "currency": "EUR",
        },
    }
    # The amount stays a decimal string on the wire: a float would have lost exactness somewhere.
    assert '"orderAmount":"199.99"' in request.content.decode()


# --- classification -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        pytest.param(
            200,
            {"status": "COMPLETED", "completedAt": "2025-06-01T12:00:00Z"},
            "completed",
            id="200-COMPLETED",
        ),
        pytest.param(201, None, "completed", id="201-empty"),
        pytest.param(204, None, "completed", id="204"),
        pytest.param(200, {"success": True}, "completed", id="200-timed-release-success"),
        pytest.param(
            200,
            {"status": "COMPLETED", "message": "Admission already completed"},
            "already_completed",
            id="200-says-already-completed",
        ),
        pytest.param(200, {"status": "DENIED", "reason": "BOT_DETECTED"}, "permanent", id="200-DENIED"),
        pytest.param(200, {"success": False}, "permanent", id="200-success-false"),
        pytest.param(
            409,
            {"error": "already_completed", "message": "Admission already completed"},
            "already_completed",
            id="409",
        ),
        pytest.param(409, None, "already_completed", id="409-empty"),
        pytest.param(409, {"error": "concurrent_modification"}, "retryable", id="409-concurrent"),
        pytest.param(
            400,
            {"error": "bad_request", "message": "Admission Already Completed"},
            "already_completed",
            id="400-text",
        ),
        pytest.param(422, "ADMISSION_ALREADY-COMPLETED", "already_completed", id="422-plain-text"),
        pytest.param(403, {"error": "Admission already completed"}, "already_completed", id="403-text"),
        pytest.param(404, {"error": "not_found", "message": "Distribution not found"}, "permanent", id="404"),
        pytest.param(
            400, {"error": "validation_error", "issues": [{"message": "Invalid type"}]}, "permanent", id="400"
        ),
        pytest.param(423, {"error": "Queue is not open yet"}, "retryable", id="423"),
        pytest.param(429, {"error": "rate_limited"}, "retryable", id="429"),
        pytest.param(500, {"error": "internal_error"}, "retryable", id="500"),
        pytest.param(502, "<html>Bad Gateway</html>", "retryable", id="502-html"),
        pytest.param(503, None, "retryable", id="503"),
        pytest.param(504, None, "retryable", id="504"),
    ],
)
def test_classifies_each_answer(status: int, body: object, outcome: str) -> None:
    result = complete_with(answer(status, body))

    assert result.outcome == CompletionOutcome(outcome)
    assert result.status_code == status
    assert result.misconfiguration is False
    assert result.outcome.is_success == (outcome in {"completed", "already_completed"})


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_retryable_and_flagged_as_misconfiguration(status: int) -> None:
    result = complete_with(answer(status, {"error": "Secret key required"}))

    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.misconfiguration is True
    assert result.status_code == status
    assert "Secret key required" in result.reason


def test_a_redirect_is_not_followed_and_counts_as_misconfiguration() -> None:
    # Given an endpoint that redirects elsewhere (a wrong FANFARE_API_URL)
    client, transport = make_client(answer(301, None, {"Location": "https://evil.test/queues/q/complete"}))

    # When completing
    with client:
        result = client.complete_admission(completion())

    # Then the secret-bearing request was sent once, to Fanfare only, and an operator is alerted
    assert [str(request.url.host) for request in transport.requests] == ["api.fanfare.test"]
    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.misconfiguration is True


def test_permanent_reason_comes_from_the_body_message() -> None:
    result = complete_with(answer(404, {"error": "not_found", "message": "Distribution not found"}))

    assert result.outcome is CompletionOutcome.PERMANENT
    assert result.reason == "HTTP 404: not_found: Distribution not found"


def test_validation_reason_includes_the_first_issue() -> None:
    body = {"error": "validation_error", "issues": [{"message": "consumerId is required", "path": []}]}

    result = complete_with(answer(400, body))

    assert result.outcome is CompletionOutcome.PERMANENT
    assert "validation_error" in result.reason
    assert "consumerId is required" in result.reason


def test_long_reasons_are_truncated_to_one_safe_line() -> None:
    result = complete_with(answer(400, {"message": "line one\nline two " + "x" * 5000}))

    assert result.outcome is CompletionOutcome.PERMANENT
    assert len(result.reason) <= 200
    assert result.reason.endswith("...")
    assert "\n" not in result.reason


# --- Retry-After ----------------------------------------------------------------------------------------


def test_429_honours_retry_after_in_seconds() -> None:
    result = complete_with(answer(429, {"error": "rate_limited"}, {"Retry-After": "30"}))

    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.retry_after_seconds == 30.0


def test_429_honours_retry_after_as_an_http_date() -> None:
    in_90_seconds = format_datetime(datetime.fromtimestamp(NOW + 90, tz=UTC), usegmt=True)

    result = complete_with(answer(429, {"error": "rate_limited"}, {"Retry-After": in_90_seconds}))

    assert result.retry_after_seconds == 90.0


def test_retry_after_as_an_iso_timestamp_is_understood_too() -> None:
    result = complete_with(
        answer(423, {"error": "Queue is not open yet"}, {"Retry-After": "2025-06-01T12:02:00Z"})
    )

    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.retry_after_seconds == 120.0


def test_retry_after_falls_back_to_the_documented_body_field() -> None:
    result = complete_with(answer(429, {"error": "Rate limit exceeded", "retryAfter": 12}))

    assert result.retry_after_seconds == 12.0


@pytest.mark.parametrize("header", ["soon", "-5", "1e9999", "Thu, 99 Foo 2025", "", "99999999999"])
def test_unusable_retry_after_is_ignored(header: str) -> None:
    result = complete_with(answer(429, {"error": "rate_limited"}, {"Retry-After": header}))

    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.retry_after_seconds is None


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after("Sat, 01 Jan 2000 00:00:00 GMT", now=NOW) == 0.0


def test_503_retry_after_is_honoured_as_well() -> None:
    result = complete_with(answer(503, None, {"Retry-After": "7"}))

    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.retry_after_seconds == 7.0


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises_and_stays_in_range(header: str) -> None:
    seconds = parse_retry_after(header, now=NOW)

    assert seconds is None or 0.0 <= seconds <= 86_400.0


# --- network failures -----------------------------------------------------------------------------------


def failing_with(error: type[httpx.TransportError], message: str = "boom") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error(message, request=request)

    return handler


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout],
    ids=lambda e: e.__name__,
)
def test_timeouts_are_retryable_without_a_status(error: type[httpx.TransportError]) -> None:
    result = complete_with(failing_with(error))

    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.status_code is None
    assert "timeout" in result.reason
    assert error.__name__ in result.reason


@pytest.mark.parametrize(
    "error", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError], ids=lambda e: e.__name__
)
def test_connection_errors_are_retryable_without_a_status(error: type[httpx.TransportError]) -> None:
    result = complete_with(failing_with(error, "[Errno 111] Connection refused"))

    assert result.outcome is CompletionOutcome.RETRYABLE
    assert result.status_code is None
    assert result.misconfiguration is False
    assert "Connection refused" in result.reason


@given(
    status=st.integers(min_value=100, max_value=599),
    body=st.one_of(
        st.none(),
        st.text(max_size=300),
        st.dictionaries(
            st.sampled_from(["error", "message", "status", "success", "retryAfter", "issues"]),
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=50)),
        ),
    ),
    retry_after=st.one_of(
        st.none(), st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=40)
    ),
)
def test_any_answer_becomes_a_result_never_an_exception(
    status: int, body: object, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else None

    result = complete_with(answer(status, body, headers))

    assert isinstance(result.outcome, CompletionOutcome)
    assert len(result.reason) <= 200
    assert result.elapsed_ms >= 0


# --- secrets --------------------------------------------------------------------------------------------


def test_reason_never_contains_the_secret_even_if_the_server_echoes_it() -> None:
    result = complete_with(answer(401, {"error": f"invalid key {SECRET}"}))

    assert SECRET not in result.reason
    assert SECRET not in repr(result)
    assert "[redacted]" in result.reason


def test_transport_error_messages_are_scrubbed_too() -> None:
    result = complete_with(failing_with(httpx.RemoteProtocolError, f"garbage near {SECRET}"))

    assert SECRET not in result.reason


def test_repr_and_str_of_client_and_credentials_never_show_the_secret() -> None:
    credentials = FanfareCredentials(org_id=ORG_ID, secret_key=SECRET)
    client, _ = make_client(answer(200))

    with client:
        shown = [
            repr(credentials),
            str(credentials),
            repr(client),
            str(client),
            repr(credentials.secret_key),
            str(credentials.secret_key),
        ]

    for text in shown:
        assert SECRET not in text
    assert ORG_ID in repr(client)


def test_credentials_are_trimmed_and_must_be_header_safe() -> None:
    credentials = FanfareCredentials(org_id=" org_1\n", secret_key="sk_test_abc\n")

    assert credentials.org_id == "org_1"
    assert credentials.secret_key.get_secret_value() == "sk_test_abc"
    with pytest.raises(ValidationError) as excinfo:
        FanfareCredentials(org_id="org_1", secret_key="sk_test\r\nX-Injected: 1")
    assert "sk_test" not in str(excinfo.value)  # the error names the problem, never the value


# --- invalid requests never reach the network ------------------------------------------------------------


def test_unknown_distribution_type_is_rejected_by_the_model() -> None:
    with pytest.raises(ValidationError, match="unknown Fanfare distribution type 'raffle'"):
        completion("raffle")


def test_unknown_distribution_type_is_rejected_before_any_http_call() -> None:
    # Given a request that went around its checks and so carries an unknown type
    request = completion()
    object.__setattr__(request, "distribution_type", "raffle")  # the point: a value the model would refuse
    client, transport = make_client(answer(200, {"status": "COMPLETED"}))

    # When completing it, Then the client refuses
    with client, pytest.raises(UnknownDistributionType):
        client.complete_admission(request)

    # And nothing was sent
    assert transport.requests == []


@pytest.mark.parametrize("bad_id", ["", "a/b", "a b", "a\tb", "..", "a?b", "a#b", "x" * 201])
def test_ids_that_are_not_one_safe_path_segment_are_rejected(bad_id: str) -> None:
    with pytest.raises(ValidationError):
        completion(distribution_id=bad_id)
    with pytest.raises(ValidationError):
        completion(consumer_id=bad_id)


# --- models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queue", DistributionType.QUEUE),
        (" DRAW ", DistributionType.DRAW),
        ("Auction", DistributionType.AUCTION),
        ("timed_release", DistributionType.TIMED_RELEASE),
        ("timed-release", DistributionType.TIMED_RELEASE),
        ("TIMED-RELEASE", DistributionType.TIMED_RELEASE),
    ],
)
def test_distribution_type_parses_loosely(raw: str, expected: DistributionType) -> None:
    assert DistributionType.parse(raw) is expected


@pytest.mark.parametrize("raw", ["raffle", "queues", "", None, 3, "timed release"])
def test_distribution_type_rejects_anything_else(raw: object) -> None:
    with pytest.raises(UnknownDistributionType):
        DistributionType.parse(raw)


def test_each_distribution_type_has_its_path_segment() -> None:
    assert {kind.value: kind.path_segment for kind in DistributionType} == {
        "queue": "queues",
        "draw": "draws",
        "auction": "auctions",
        "timed_release": "timed-releases",
    }


def test_order_amount_is_never_a_float() -> None:
    metadata = completion().metadata

    with pytest.raises(ValidationError, match="never a float"):
        CompletionMetadata.from_dict({**metadata.to_dict(), "orderAmount": 199.99})
    assert (
        CompletionMetadata.from_dict({**metadata.to_dict(), "orderAmount": Decimal("10.50")}).orderAmount
        == "10.50"
    )


@pytest.mark.parametrize("completed_at", ["2025-06-01T13:59:58+02:00", "yesterday", "2025-06-01T11:59:58"])
def test_completed_at_must_be_an_iso_utc_timestamp(completed_at: str) -> None:
    metadata = completion().metadata

    with pytest.raises(ValidationError):
        CompletionMetadata.from_dict({**metadata.to_dict(), "completedAt": completed_at})


def test_a_bad_request_raises_one_pydantic_error_per_field_in_pydantic_terms() -> None:
    metadata = completion().metadata.to_dict()
    with pytest.raises(ValidationError) as excinfo:
        CompletionRequest.from_dict(
            {
                "distribution_id": "a/b",
                "distribution_type": "raffle",
                "consumer_id": 7,
                "metadata": {**metadata, "itemCount": True, "currency": "euro", "orderId": ""},
            }
        )
    problems = {".".join(str(part) for part in e["loc"]): e["msg"] for e in excinfo.value.errors()}
    assert problems == {
        "distribution_id": "Value error, distribution_id must not contain '/', '\\', '?', '#', '%', "
        "whitespace or control characters",
        "distribution_type": "Value error, unknown Fanfare distribution type 'raffle'",
        "consumer_id": "Input should be a valid string",
        "metadata.orderId": "String should have at least 1 character",
        "metadata.itemCount": "Input should be a valid integer",
        "metadata.currency": "Value error, currency must be a three-letter ISO 4217 code",
    }


def test_unknown_and_missing_fields_are_refused_when_read_back() -> None:
    fields = completion().to_dict()
    with pytest.raises(ValidationError) as excinfo:
        CompletionRequest.from_dict({**fields, "priority": "high"})
    assert [(e["type"], e["loc"]) for e in excinfo.value.errors()] == [("extra_forbidden", ("priority",))]
    del fields["consumer_id"]
    with pytest.raises(ValidationError) as excinfo:
        CompletionRequest.from_dict(fields)
    assert [(e["type"], e["loc"]) for e in excinfo.value.errors()] == [("missing", ("consumer_id",))]


def test_models_read_back_what_they_wrote_and_compare_by_value() -> None:
    request = completion("timed-release")
    again = CompletionRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request
    assert hash(again) == hash(request)
    assert again.distribution_type is DistributionType.TIMED_RELEASE
    assert again != completion("queue")
    result = CompletionResult(
        outcome="completed", status_code=200, reason="HTTP 200", elapsed_ms=3, remote_status="COMPLETED"
    )
    assert CompletionResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.to_dict() == {
        "outcome": "completed",
        "status_code": 200,
        "reason": "HTTP 200",
        "retry_after_seconds": None,
        "misconfiguration": False,
        "elapsed_ms": 3.0,
        "remote_status": "COMPLETED",
    }


def test_models_are_immutable() -> None:
    request = completion()
    with pytest.raises(AttributeError):
        request.consumer_id = "someone else"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        request.metadata.orderAmount = "0"  # type: ignore[misc]


def test_a_result_keeps_its_reason_to_one_bounded_line_and_refuses_negative_times() -> None:
    result = CompletionResult(
        outcome="retryable", status_code=None, reason="a\nb" + "x" * 300, elapsed_ms=1.0
    )
    assert "\n" not in result.reason
    assert len(result.reason) == 200
    with pytest.raises(ValidationError):
        CompletionResult(outcome="retryable", status_code=None, reason="r", elapsed_ms=-1.0)
    with pytest.raises(ValidationError):
        CompletionResult(outcome="maybe", status_code=None, reason="r", elapsed_ms=1.0)


def test_credentials_compare_by_value_so_a_rotated_key_rebuilds_the_client() -> None:
    assert FanfareCredentials(org_id="org_1", secret_key="k1") == FanfareCredentials(
        org_id=" org_1", secret_key="k1\n"
    )
    assert FanfareCredentials(org_id="org_1", secret_key="k1") != FanfareCredentials(
        org_id="org_1", secret_key="k2"
    )
    with pytest.raises(ValidationError) as excinfo:
        FanfareCredentials(org_id="", secret_key="")
    assert [e["loc"] for e in excinfo.value.errors()] == [("org_id",), ("secret_key",)]


# --- construction ---------------------------------------------------------------------------------------


def test_plain_http_is_refused_except_to_loopback() -> None:
    credentials = FanfareCredentials(org_id=ORG_ID, secret_key=SECRET)

    with pytest.raises(ValueError, match="https"):
        FanfareClient(base_url="http://api.fanfare.io", credentials=credentials)
    FanfareClient(base_url="http://127.0.0.1:4010", credentials=credentials).close()
    FanfareClient(base_url="http://localhost:4010", credentials=credentials).close()


def test_fewer_than_ten_connections_is_refused() -> None:
    credentials = FanfareCredentials(org_id=ORG_ID, secret_key=SECRET)

    with pytest.raises(ValueError, match="at least 10"):
        FanfareClient(base_url=BASE_URL, credentials=credentials, max_connections=5)


def test_a_closed_client_sends_nothing() -> None:
    client, transport = make_client(answer(200, {"status": "COMPLETED"}))
    with client:
        pass

    with pytest.raises(RuntimeError):
        client.complete_admission(completion())
    assert transport.requests == []

"""What we send to Fanfare's admission-completion API and what we make of its answer.

These models are the boundary between the domain and the Fanfare HTTP adapter: the domain builds a
`CompletionRequest` and receives a `CompletionResult`, and never sees HTTP. Facts behind the shapes are in
`/work/shared/reference/fanfare-api.md` §1 (endpoints, body) and §3 (errors, Retry-After).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Ids travel inside a URL path (`/queues/{id}/complete`) and in SQS messages. 200 matches the limit the
# webhook side already enforces (`models/queue_message.Admission`), so nothing accepted there fails here
# for length alone.
MAX_ID_LENGTH: Final = 200
MAX_REASON_LENGTH: Final = 200

# Characters that would change the meaning of a URL path or of a log line if an id carried them. The
# adapter also percent-encodes the id, but refusing them up front turns a hostile or broken shop field into
# a clear permanent failure instead of a request to some other Fanfare endpoint.
_FORBIDDEN_ID_CHARS: Final = re.compile(r"[/\\?#%\s\x00-\x1f\x7f]")
# A decimal string with at most 8 fraction digits: the shape Fanfare's own OpenAPI uses for money
# (`^\d{1,12}(\.\d{1,8})?$`, fanfare-api.md §1.5), so the value is never re-interpreted as a float.
_DECIMAL_AMOUNT: Final = re.compile(r"^\d{1,12}(\.\d{1,8})?$")
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]+")


class UnknownDistributionType(ValueError):
    """The shop named a distribution type Fanfare has no completion endpoint for."""

    def __init__(self, value: object) -> None:
        # The value came from a shop's order data: show a bounded repr, never an unbounded blob.
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"unknown Fanfare distribution type {shown}")
        self.value = value


class DistributionType(StrEnum):
    """The four distribution kinds of the order-completion guide, with the path segment of each."""

    QUEUE = "queue"
    DRAW = "draw"
    AUCTION = "auction"
    TIMED_RELEASE = "timed_release"

    @classmethod
    def parse(cls, value: object) -> DistributionType:
        """Read a type as shops write it: any case, surrounding spaces, `timed-release` or `timed_release`.

        Anything else raises `UnknownDistributionType`, so the caller can record a permanent failure with
        a reason instead of guessing an endpoint.
        """
        if isinstance(value, DistributionType):
            return value
        if not isinstance(value, str):
            raise UnknownDistributionType(value)
        normalised = value.strip().lower().replace("-", "_")
        try:
            return cls(normalised)
        except ValueError:
            raise UnknownDistributionType(value) from None

    @property
    def path_segment(self) -> str:
        """The collection name in the completion URL (`/{segment}/{id}/complete`)."""
        return _PATH_SEGMENTS[self]


_PATH_SEGMENTS: Final[dict[DistributionType, str]] = {
    DistributionType.QUEUE: "queues",
    DistributionType.DRAW: "draws",
    DistributionType.AUCTION: "auctions",
    DistributionType.TIMED_RELEASE: "timed-releases",
}


def parse_distribution_type(value: object) -> DistributionType:
    """Function form of `DistributionType.parse`, for callers that map over raw values."""
    return DistributionType.parse(value)


def validate_path_id(value: str, what: str) -> str:
    """Return `value` if it can safely be one URL path segment (and a log field); raise ValueError if not."""
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if _FORBIDDEN_ID_CHARS.search(value):
        raise ValueError(
            f"{what} must not contain '/', '\\', '?', '#', '%', whitespace or control characters"
        )
    if value in {".", ".."}:
        # URL normalisation would turn `/queues/../complete` into a different endpoint.
        raise ValueError(f"{what} must not be a dot segment")
    return value


class CompletionMetadata(BaseModel):
    """Order facts sent along with a completion, for Fanfare's analytics (the guide's `metadata`).

    Field names are the wire names (camelCase), as in the rest of the layer's message models, so the JSON
    body is a plain dump with no alias mapping to get wrong.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    orderId: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    orderAmount: str
    completedAt: str
    platform: str = Field(min_length=1, max_length=50)
    itemCount: int = Field(ge=0, strict=True)
    currency: str

    @field_validator("orderAmount", mode="before")
    @classmethod
    def _amount_is_a_decimal_string(cls, value: object) -> object:
        # A float has already lost the cents (0.1 + 0.2); refuse it loudly rather than format it.
        if isinstance(value, Decimal) and value.is_finite():
            value = format(value, "f")
        if isinstance(value, str) and _DECIMAL_AMOUNT.fullmatch(value.strip()):
            return value.strip()
        raise ValueError("orderAmount must be a non-negative decimal string such as '199.99', never a float")

    @field_validator("completedAt", mode="before")
    @classmethod
    def _completed_at_is_utc_iso(cls, value: object) -> object:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("completedAt must be timezone-aware")
            return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if not isinstance(value, str):
            raise ValueError("completedAt must be an ISO-8601 UTC timestamp string")
        try:
            # Python 3.11+ accepts a trailing "Z" here.
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("completedAt must be an ISO-8601 UTC timestamp string") from None
        if parsed.utcoffset() != timedelta(0):
            # A local offset is a valid instant, but the contract says UTC and mixing offsets makes history
            # items sort wrongly as strings.
            raise ValueError("completedAt must be in UTC (Z or +00:00)")
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency_is_iso_4217(cls, value: object) -> object:
        if isinstance(value, str) and _CURRENCY.fullmatch(value.strip().upper()):
            return value.strip().upper()
        raise ValueError("currency must be a three-letter ISO 4217 code")


class CompletionRequest(BaseModel):
    """One admission to complete: which distribution, which consumer, and the order that used it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    distribution_id: str
    distribution_type: DistributionType
    consumer_id: str
    metadata: CompletionMetadata

    @field_validator("distribution_type", mode="before")
    @classmethod
    def _parse_type(cls, value: object) -> DistributionType:
        return DistributionType.parse(value)

    @field_validator("distribution_id")
    @classmethod
    def _distribution_id_is_path_safe(cls, value: str) -> str:
        return validate_path_id(value, "distribution_id")

    @field_validator("consumer_id")
    @classmethod
    def _consumer_id_is_path_safe(cls, value: str) -> str:
        return validate_path_id(value, "consumer_id")

    def to_json_body(self) -> dict[str, Any]:
        """The exact body of the guide's call: `{"consumerId", "metadata": {...}}`, camelCase keys.

        Fanfare's OpenAPI only defines `consumerId`; `metadata` comes from the order-completion guide and
        whether Fanfare keeps it is unknown (fanfare-api.md §1.7), so it is sent as the guide sends it.
        """
        return {"consumerId": self.consumer_id, "metadata": self.metadata.model_dump(mode="json")}


class CompletionOutcome(StrEnum):
    COMPLETED = "completed"
    # Fanfare already had the admission as completed: for us this is success (the call is idempotent).
    ALREADY_COMPLETED = "already_completed"
    # Try again later (429, 5xx, timeouts, connection errors, 401/403 while credentials are being fixed).
    RETRYABLE = "retryable"
    # Fanfare refused the request for a reason retrying will not change (validation, unknown distribution).
    PERMANENT = "permanent"

    @property
    def is_success(self) -> bool:
        return self in {CompletionOutcome.COMPLETED, CompletionOutcome.ALREADY_COMPLETED}


def _safe_reason(value: str) -> str:
    # The reason ends up in logs, DynamoDB history and alarms: one line, bounded, no control characters
    # that could forge log lines.
    one_line = " ".join(_CONTROL_CHARS.sub(" ", value).split())
    if len(one_line) > MAX_REASON_LENGTH:
        return one_line[: MAX_REASON_LENGTH - 3] + "..."
    return one_line


class CompletionResult(BaseModel):
    """What happened to one completion call. Safe to log as a whole: it never carries credentials."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: CompletionOutcome
    # None when no HTTP answer arrived (timeout, connection error).
    status_code: int | None
    reason: str
    retry_after_seconds: float | None = Field(default=None, ge=0)
    # True when the failure means our own configuration is wrong (401/403, a redirect): retrying is kept
    # so no order is lost while someone fixes it, and the consumer raises an alarm.
    misconfiguration: bool = False
    elapsed_ms: float = Field(ge=0)
    # The `status` field of a 2xx body (e.g. COMPLETED, DENIED), when Fanfare sent one: kept for the order
    # history because what Fanfare answers for edge cases is undocumented (fanfare-api.md §1.8).
    remote_status: str | None = None

    @field_validator("reason", mode="before")
    @classmethod
    def _bounded_reason(cls, value: object) -> str:
        return _safe_reason(str(value))

    @field_validator("remote_status", mode="before")
    @classmethod
    def _bounded_status(cls, value: object) -> str | None:
        return None if value is None else _safe_reason(str(value))[:50]

    @property
    def is_success(self) -> bool:
        return self.outcome.is_success

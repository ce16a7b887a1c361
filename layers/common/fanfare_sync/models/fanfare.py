"""What we send to Fanfare's admission-completion API and what we make of its answer.

These models are the boundary between the domain and the Fanfare HTTP adapter: the domain builds a
`CompletionRequest` and receives a `CompletionResult`, and never sees HTTP.

They are small immutable value classes with explicit checks rather than pydantic models: the consumer
builds a handful per order, and pydantic's model machinery alone added ~50 ms to each cold start of the
consumer. Invalid input still raises pydantic's `ValidationError` (built with `pydantic_core`, which the
consumer loads anyway), one error per field with the same types and messages a model would give, so
callers handle it as before. Facts behind the shapes are in
`/work/shared/reference/fanfare-api.md` §1 (endpoints, body) and §3 (errors, Retry-After).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from pydantic_core import InitErrorDetails, ValidationError

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


class _Problems:
    """The problems found while building one value, raised together as pydantic's `ValidationError`."""

    def __init__(self, title: str, *, hide_input: bool = False) -> None:
        self.title = title
        self.hide_input = hide_input
        self.errors: list[InitErrorDetails] = []

    def add(self, kind: str, field: str, value: object, **context: Any) -> None:
        error: InitErrorDetails = {"type": kind, "loc": (field,), "input": value}
        if context:
            error["ctx"] = context
        self.errors.append(error)

    def value_error(self, field: str, value: object, error: ValueError) -> None:
        self.add("value_error", field, value, error=error)

    def string(self, field: str, value: object, *, min_length: int = 0, max_length: int | None = None) -> str:
        if not isinstance(value, str):
            self.add("string_type", field, value)
            return ""
        if len(value) < min_length:
            self.add("string_too_short", field, value, min_length=min_length)
        elif max_length is not None and len(value) > max_length:
            self.add("string_too_long", field, value, max_length=max_length)
        return value

    def number(self, field: str, value: object, *, optional: bool = False) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add("float_type", field, value)
            return None
        if value < 0:
            self.add("greater_than_equal", field, value, ge=0)
        return float(value)

    def nested(self, field: str, error: ValidationError) -> None:
        for problem in error.errors(include_url=False):
            nested: InitErrorDetails = {
                "type": problem["type"],
                "loc": (field, *problem["loc"]),
                "input": problem["input"],
            }
            if "ctx" in problem:
                nested["ctx"] = problem["ctx"]
            self.errors.append(nested)

    def keys(self, data: Mapping[str, Any], fields: tuple[str, ...], optional: frozenset[str]) -> None:
        """`extra="forbid"` and required fields, for values read from a dict."""
        for key in data:
            if key not in fields:
                self.add("extra_forbidden", str(key), data[key])
        for key in fields:
            if key not in data and key not in optional:
                self.add("missing", key, dict(data))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError.from_exception_data(self.title, self.errors, hide_input=self.hide_input)


class _Value:
    """Immutable once built; equal, hashed and shown by its fields, like a frozen model."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _optional: ClassVar[frozenset[str]] = frozenset()

    def _init(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Value)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"

    @classmethod
    def _checked_keys(cls, data: object) -> None:
        problems = _Problems(cls.__name__)
        if not isinstance(data, Mapping):
            problems.add("dict_type", "__root__", data)
        else:
            problems.keys(data, cls._fields, cls._optional)
        problems.raise_if_any()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read one back from `to_dict()`'s shape (unknown keys refused)."""
        cls._checked_keys(data)
        return cls(**data)


class CompletionMetadata(_Value):
    """Order facts sent along with a completion, for Fanfare's analytics (the guide's `metadata`).

    Field names are the wire names (camelCase), as in the rest of the layer's message models, so the JSON
    body is a plain dump with no alias mapping to get wrong.
    """

    _fields = ("orderId", "orderAmount", "completedAt", "platform", "itemCount", "currency")
    __slots__ = _fields

    orderId: str
    orderAmount: str
    completedAt: str
    platform: str
    itemCount: int
    currency: str

    def __init__(
        self,
        *,
        orderId: str,
        orderAmount: str | Decimal,
        completedAt: str | datetime,
        platform: str,
        itemCount: int,
        currency: str,
    ) -> None:
        problems = _Problems(type(self).__name__)
        order_id = problems.string("orderId", orderId, min_length=1, max_length=MAX_ID_LENGTH)
        amount = _amount(orderAmount, problems)
        completed_at = _completed_at(completedAt, problems)
        platform_name = problems.string("platform", platform, min_length=1, max_length=50)
        # Strict: a bool or "2" is not a count.
        if isinstance(itemCount, bool) or not isinstance(itemCount, int):
            problems.add("int_type", "itemCount", itemCount)
        elif itemCount < 0:
            problems.add("greater_than_equal", "itemCount", itemCount, ge=0)
        code = currency.strip().upper() if isinstance(currency, str) else None
        if code is None or not _CURRENCY.fullmatch(code):
            problems.value_error(
                "currency", currency, ValueError("currency must be a three-letter ISO 4217 code")
            )
        problems.raise_if_any()
        self._init(
            orderId=order_id,
            orderAmount=amount,
            completedAt=completed_at,
            platform=platform_name,
            itemCount=itemCount,
            currency=code,
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}


def _amount(value: object, problems: _Problems) -> str:
    # A float has already lost the cents (0.1 + 0.2); refuse it loudly rather than format it.
    if isinstance(value, Decimal) and value.is_finite():
        value = format(value, "f")
    if isinstance(value, str) and _DECIMAL_AMOUNT.fullmatch(value.strip()):
        return value.strip()
    problems.value_error(
        "orderAmount",
        value,
        ValueError("orderAmount must be a non-negative decimal string such as '199.99', never a float"),
    )
    return ""


def _completed_at(value: object, problems: _Problems) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            problems.value_error("completedAt", value, ValueError("completedAt must be timezone-aware"))
            return ""
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if not isinstance(value, str):
        problems.value_error(
            "completedAt", value, ValueError("completedAt must be an ISO-8601 UTC timestamp string")
        )
        return ""
    try:
        # Python 3.11+ accepts a trailing "Z" here.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.value_error(
            "completedAt", value, ValueError("completedAt must be an ISO-8601 UTC timestamp string")
        )
        return ""
    if parsed.utcoffset() != timedelta(0):
        # A local offset is a valid instant, but the contract says UTC and mixing offsets makes history
        # items sort wrongly as strings.
        problems.value_error("completedAt", value, ValueError("completedAt must be in UTC (Z or +00:00)"))
    return value


class CompletionRequest(_Value):
    """One admission to complete: which distribution, which consumer, and the order that used it."""

    _fields = ("distribution_id", "distribution_type", "consumer_id", "metadata")
    __slots__ = _fields

    distribution_id: str
    distribution_type: DistributionType
    consumer_id: str
    metadata: CompletionMetadata

    def __init__(
        self,
        *,
        distribution_id: str,
        distribution_type: DistributionType | str,
        consumer_id: str,
        metadata: CompletionMetadata | Mapping[str, Any] | object,
    ) -> None:
        problems = _Problems(type(self).__name__)
        ids = {}
        for field, value in (("distribution_id", distribution_id), ("consumer_id", consumer_id)):
            ids[field] = problems.string(field, value)
            if isinstance(value, str):
                try:
                    validate_path_id(value, field)
                except ValueError as error:
                    problems.value_error(field, value, error)
        kind: DistributionType | None = None
        try:
            kind = DistributionType.parse(distribution_type)
        except UnknownDistributionType as error:
            problems.value_error("distribution_type", distribution_type, error)
        if isinstance(metadata, CompletionMetadata):
            facts: CompletionMetadata | None = metadata
        elif isinstance(metadata, Mapping):
            facts = None
            try:
                facts = CompletionMetadata.from_dict(metadata)
            except ValidationError as error:
                problems.nested("metadata", error)
        else:
            facts = None
            problems.add("model_type", "metadata", metadata, class_name="CompletionMetadata")
        problems.raise_if_any()
        self._init(
            distribution_id=ids["distribution_id"],
            distribution_type=kind,
            consumer_id=ids["consumer_id"],
            metadata=facts,
        )

    def to_json_body(self) -> dict[str, Any]:
        """The exact body of the guide's call: `{"consumerId", "metadata": {...}}`, camelCase keys.

        Fanfare's OpenAPI only defines `consumerId`; `metadata` comes from the order-completion guide and
        whether Fanfare keeps it is unknown (fanfare-api.md §1.7), so it is sent as the guide sends it.
        """
        return {"consumerId": self.consumer_id, "metadata": self.metadata.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, readable by `from_dict` (the idempotency record carries it)."""
        return {
            "distribution_id": self.distribution_id,
            "distribution_type": self.distribution_type.value,
            "consumer_id": self.consumer_id,
            "metadata": self.metadata.to_dict(),
        }


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


class CompletionResult(_Value):
    """What happened to one completion call. Safe to log as a whole: it never carries credentials."""

    _fields = (
        "outcome",
        "status_code",
        "reason",
        "retry_after_seconds",
        "misconfiguration",
        "elapsed_ms",
        "remote_status",
    )
    __slots__ = _fields
    _optional = frozenset({"retry_after_seconds", "misconfiguration", "remote_status"})

    outcome: CompletionOutcome
    # None when no HTTP answer arrived (timeout, connection error).
    status_code: int | None
    reason: str
    retry_after_seconds: float | None
    # True when the failure means our own configuration is wrong (401/403, a redirect): retrying is kept
    # so no order is lost while someone fixes it, and the consumer raises an alarm.
    misconfiguration: bool
    elapsed_ms: float
    # The `status` field of a 2xx body (e.g. COMPLETED, DENIED), when Fanfare sent one: kept for the order
    # history because what Fanfare answers for edge cases is undocumented (fanfare-api.md §1.8).
    remote_status: str | None

    def __init__(
        self,
        *,
        outcome: CompletionOutcome | str,
        status_code: int | None,
        reason: object,
        elapsed_ms: float,
        retry_after_seconds: float | None = None,
        misconfiguration: bool | object = False,
        remote_status: object = None,
    ) -> None:
        problems = _Problems(type(self).__name__)
        kind: CompletionOutcome | None = None
        try:
            kind = CompletionOutcome(outcome)
        except ValueError:
            problems.add(
                "enum", "outcome", outcome, expected=", ".join(repr(o.value) for o in CompletionOutcome)
            )
        if status_code is not None and (isinstance(status_code, bool) or not isinstance(status_code, int)):
            problems.add("int_type", "status_code", status_code)
        retry_after = problems.number("retry_after_seconds", retry_after_seconds, optional=True)
        elapsed = problems.number("elapsed_ms", elapsed_ms)
        if not isinstance(misconfiguration, bool):
            problems.add("bool_type", "misconfiguration", misconfiguration)
        problems.raise_if_any()
        self._init(
            outcome=kind,
            status_code=status_code,
            reason=_safe_reason(str(reason)),
            retry_after_seconds=retry_after,
            misconfiguration=misconfiguration,
            elapsed_ms=elapsed,
            remote_status=None if remote_status is None else _safe_reason(str(remote_status))[:50],
        )

    @property
    def is_success(self) -> bool:
        return self.outcome.is_success

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, readable by `from_dict` (the idempotency record stores it)."""
        values = {name: getattr(self, name) for name in self._fields}
        values["outcome"] = self.outcome.value
        return values

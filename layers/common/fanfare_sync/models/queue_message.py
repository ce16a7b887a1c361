"""The versioned message the webhook functions put on the completion queue (the DESIGN contract).

Frozen dataclasses with explicit checks rather than pydantic models: the webhook functions build one
message per request and must answer within milliseconds even on a cold start, and importing pydantic
alone costs them ~45 ms there (and ~30 µs per message when warm). The contract's rules are checked both
when a message is built (`__post_init__`) and when the consumer parses one (`OrderMessage.from_json`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from enum import StrEnum
from typing import Any, Literal

MESSAGE_VERSION: Literal[1] = 1

DISTRIBUTION_ID_MAX_LENGTH = 200
DISTRIBUTION_TYPE_MAX_LENGTH = 50
CONSUMER_ID_MAX_LENGTH = 200


class Platform(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"


class OrderEventKind(StrEnum):
    PAID = "order.paid"
    CANCELLED = "order.cancelled"
    REFUNDED = "order.refunded"


class InvalidQueueMessageError(ValueError):
    """A message that breaks the contract. Its problems name fields and rules, never the values."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.description)

    @property
    def problem_count(self) -> int:
        return len(self.problems)

    @property
    def description(self) -> str:
        return f"{self.problem_count} problem(s): " + "; ".join(self.problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """One Fanfare admission carried by an order; an order may carry several (one per line item)."""

    distributionId: str
    # Kept as the normalised text the shop sent: the consumer rejects unknown types with a recorded reason,
    # which is more useful to an operator than a webhook silently dropped at the edge.
    distributionType: str
    consumerId: str

    def __post_init__(self) -> None:
        if not self._is_valid():
            raise InvalidQueueMessageError(_problems(_ADMISSION_RULES, self._values()))

    def _is_valid(self) -> bool:
        """The rules of _ADMISSION_RULES in one expression (a test keeps the two in step)."""
        return (
            isinstance(self.distributionId, str)
            and 1 <= len(self.distributionId) <= DISTRIBUTION_ID_MAX_LENGTH
            and isinstance(self.distributionType, str)
            and 1 <= len(self.distributionType) <= DISTRIBUTION_TYPE_MAX_LENGTH
            and isinstance(self.consumerId, str)
            and 1 <= len(self.consumerId) <= CONSUMER_ID_MAX_LENGTH
        )

    def _values(self) -> dict[str, Any]:
        return {
            "distributionId": self.distributionId,
            "distributionType": self.distributionType,
            "consumerId": self.consumerId,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderMessage:
    """One order event. Money is a decimal string, never a float."""

    v: Literal[1] = MESSAGE_VERSION
    kind: OrderEventKind
    platform: Platform
    shop: str
    orderId: str
    topic: str
    # The platform's id for this delivery (Shopify X-Shopify-Webhook-Id,
    # WooCommerce X-WC-Webhook-Delivery-ID).
    deliveryId: str | None = None
    # The identity of the event behind the delivery (Shopify X-Shopify-Event-Id; for WooCommerce, whose
    # delivery id is only unique per second, webhook id + order id + status + modification time).
    eventId: str | None = None
    triggeredAt: str | None = None
    receivedAt: str
    admissions: tuple[Admission, ...] = ()
    amount: str | None = None
    currency: str | None = None
    itemCount: int = 0

    def __post_init__(self) -> None:
        # Every message the webhook functions build is valid: check that in one expression, and name the
        # problems (the slower, table-driven way the parser uses) only when it is not.
        if not self._is_valid():
            raise InvalidQueueMessageError(_problems(_MESSAGE_RULES, self._values()))

    def _is_valid(self) -> bool:
        """The rules of _MESSAGE_RULES in one expression (a test keeps the two in step)."""
        return (
            type(self.v) is int
            and self.v == MESSAGE_VERSION
            and isinstance(self.kind, OrderEventKind)
            and isinstance(self.platform, Platform)
            and isinstance(self.shop, str)
            and self.shop != ""
            and isinstance(self.orderId, str)
            and self.orderId != ""
            and isinstance(self.topic, str)
            and isinstance(self.receivedAt, str)
            and (self.deliveryId is None or isinstance(self.deliveryId, str))
            and (self.eventId is None or isinstance(self.eventId, str))
            and (self.triggeredAt is None or isinstance(self.triggeredAt, str))
            and (self.amount is None or isinstance(self.amount, str))
            and (self.currency is None or isinstance(self.currency, str))
            and type(self.itemCount) is int
            and isinstance(self.admissions, tuple)
            and all(isinstance(admission, Admission) for admission in self.admissions)
        )

    def _values(self) -> dict[str, Any]:
        # Field order is the contract's order, which `to_json` keeps.
        return {
            "v": self.v,
            "kind": self.kind,
            "platform": self.platform,
            "shop": self.shop,
            "orderId": self.orderId,
            "topic": self.topic,
            "deliveryId": self.deliveryId,
            "eventId": self.eventId,
            "triggeredAt": self.triggeredAt,
            "receivedAt": self.receivedAt,
            "admissions": self.admissions,
            "amount": self.amount,
            "currency": self.currency,
            "itemCount": self.itemCount,
        }

    def to_json(self) -> str:
        """The queue body: compact JSON, keys in contract order, non-ASCII text as UTF-8 (not escaped).

        Byte for byte what pydantic's `model_dump_json()` produced for the same message before.
        """
        values = self._values()
        values["admissions"] = [admission._values() for admission in self.admissions]
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str | bytes) -> OrderMessage:
        """Parse a queue body; raises InvalidQueueMessageError listing every problem found.

        Unknown fields are rejected, so a producer that drifts from the contract is noticed at once.
        """
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidQueueMessageError(["body is not valid JSON"]) from None
        if not isinstance(data, dict):
            raise InvalidQueueMessageError(["body is not a JSON object"])
        problems = [f"{name}: unknown field" for name in data if name not in _MESSAGE_DEFAULTS]
        values = {name: data.get(name, default) for name, default in _MESSAGE_DEFAULTS.items()}
        values["kind"] = _member(OrderEventKind, values["kind"])
        values["platform"] = _member(Platform, values["platform"])
        values["admissions"] = _parse_admissions(values["admissions"], problems)
        problems += _problems(_MESSAGE_RULES, values)
        if problems:
            raise InvalidQueueMessageError(problems)
        return cls(**values)


_Rules = tuple[tuple[str, Callable[[Any], bool], str], ...]


def _text(min_length: int = 0, max_length: int | None = None) -> Callable[[Any], bool]:
    # Lengths in characters, as the contract (and pydantic before) count them.
    if max_length is None:
        return lambda value: isinstance(value, str) and len(value) >= min_length
    return lambda value: isinstance(value, str) and min_length <= len(value) <= max_length


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


_ADMISSION_RULES: _Rules = tuple(
    (name, _text(1, limit), f"must be a string of 1 to {limit} characters")
    for name, limit in (
        ("distributionId", DISTRIBUTION_ID_MAX_LENGTH),
        ("distributionType", DISTRIBUTION_TYPE_MAX_LENGTH),
        ("consumerId", CONSUMER_ID_MAX_LENGTH),
    )
)
_MESSAGE_RULES: _Rules = (
    # `type(...) is int`: True == 1 in Python, but a boolean is never a version or a count.
    ("v", lambda value: type(value) is int and value == MESSAGE_VERSION, f"must be {MESSAGE_VERSION}"),
    ("kind", lambda value: isinstance(value, OrderEventKind), "must be one of " + ", ".join(OrderEventKind)),
    ("platform", lambda value: isinstance(value, Platform), "must be one of " + ", ".join(Platform)),
    ("shop", _text(1), "must be a non-empty string"),
    ("orderId", _text(1), "must be a non-empty string"),
    ("topic", _text(), "must be a string"),
    ("deliveryId", _optional_text, "must be a string or null"),
    ("eventId", _optional_text, "must be a string or null"),
    ("triggeredAt", _optional_text, "must be a string or null"),
    ("receivedAt", _text(), "must be a string"),
    (
        "admissions",
        lambda value: isinstance(value, tuple) and all(isinstance(item, Admission) for item in value),
        "must be a list of admissions",
    ),
    ("amount", _optional_text, "must be a decimal string or null"),
    ("currency", _optional_text, "must be a string or null"),
    ("itemCount", lambda value: type(value) is int, "must be an integer"),
)
# What a parsed body may omit; the required fields "default" to dataclasses.MISSING, reported as missing.
_MESSAGE_DEFAULTS: dict[str, Any] = {
    name: field.default for name, field in OrderMessage.__dataclass_fields__.items()
}
_ADMISSION_FIELDS = frozenset(Admission.__dataclass_fields__)


def _problems(rules: _Rules, values: Mapping[str, Any], where: str = "") -> list[str]:
    problems: list[str] = []
    for name, is_valid, rule in rules:
        value = values.get(name, MISSING)
        if value is MISSING:
            problems.append(f"{where}{name}: missing")
        elif not is_valid(value):
            problems.append(f"{where}{name}: {rule}")
    return problems


def _member(enum: type[StrEnum], value: Any) -> Any:
    """The enum member a parsed string names; anything else is returned as is, for the rules to report."""
    if isinstance(value, str) and value in enum._value2member_map_:
        return enum(value)
    return value


def _parse_admissions(value: Any, problems: list[str]) -> Any:
    if value is MISSING:
        return ()
    if not isinstance(value, list):
        return value  # reported by the rules
    admissions: list[Admission] = []
    for index, item in enumerate(value):
        where = f"admissions[{index}]."
        if not isinstance(item, dict):
            problems.append(f"admissions[{index}]: must be an object")
            continue
        found = [f"{where}{name}: unknown field" for name in item if name not in _ADMISSION_FIELDS]
        found += _problems(_ADMISSION_RULES, item, where)
        if found:
            problems += found
        else:
            admissions.append(Admission(**item))
    return tuple(admissions)

"""What extracting an order event from a verified webhook can yield, shared by both platforms."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple

from fanfare_sync.models.queue_message import OrderMessage


class MalformedPayloadError(ValueError):
    """A signed body that is not an order this topic should carry. Retrying it cannot help."""


class IgnoreReason(StrEnum):
    TOPIC_NOT_HANDLED = "topic_not_handled"
    NOT_FANFARE = "not_fanfare"
    NOT_PAID = "not_paid"
    INCOMPLETE_FANFARE_DATA = "incomplete_fanfare_data"


class Ignored(NamedTuple):  # a NamedTuple: cheaper to define at a cold start than a dataclass
    reason: IgnoreReason
    order_id: str | None = None


Extraction = OrderMessage | Ignored


def require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise MalformedPayloadError("body is not a JSON object")
    return payload


def require_order_id(value: Any, field: str = "id") -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MalformedPayloadError(f"missing or invalid order {field}")
    text = str(value).strip()
    if len(text) > 100:
        raise MalformedPayloadError(f"order {field} too long")
    return text


# An amount this large is not an order's and is treated as absent. Built once rather than on every call.
_MONEY_LIMIT = Decimal(10) ** 15


def decimal_text(value: Any) -> str | None:
    """Money as a plain decimal string ("2250.00"); None when absent or not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or abs(amount) >= _MONEY_LIMIT:
        return None
    return format(amount, "f")


def short_text(value: Any, limit: int = 100) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:limit]
    return None


def count_line_items(line_items: Any) -> int:
    return len(line_items) if isinstance(line_items, list) else 0

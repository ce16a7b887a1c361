"""The order record the consumer keeps per order (its sync state), as the logic layer sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class SyncStatus(StrEnum):
    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"


class AdmissionState(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class OrderEventName(StrEnum):
    """History events: what the order item cannot say on its own.

    Neither an order's receipt nor a completion is an event item: the order item's single write per attempt
    records them (receivedAt; each admission's completedAt and Fanfare's answer), which keeps an order synced
    at its first attempt at the write-unit floor. Events record failed attempts and lifecycle changes.
    """

    RETRY_SCHEDULED = "fanfare_retry_scheduled"
    SYNC_FAILED = "fanfare_sync_failed"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_REFUNDED = "order_refunded"
    ORDER_REQUEUED = "order_requeued"
    SYNC_RESUMED = "fanfare_sync_resumed"


@dataclass(frozen=True)
class OrderKey:
    platform: str
    shop: str
    order_id: str

    @property
    def pk(self) -> str:
        return f"ORDER#{self.platform}#{self.shop}#{self.order_id}"


@dataclass
class StoredAdmission:
    distribution_id: str
    distribution_type: str
    consumer_id: str
    state: AdmissionState = AdmissionState.PENDING


@dataclass
class OrderState:
    """What the consumer knows of an order before an attempt: read once, written once after it."""

    key: OrderKey
    sync_status: SyncStatus | None
    admissions: list[StoredAdmission] = field(default_factory=list)
    # False when the order item has no admissions yet (never attempted, or only a cancellation seen):
    # the attempt's write then sets the whole list instead of updating entries by index.
    admissions_stored: bool = False
    last_error: str | None = None

    @property
    def pending_indexes(self) -> list[int]:
        return [i for i, a in enumerate(self.admissions) if a.state is not AdmissionState.COMPLETED]


class AttemptEnd(StrEnum):
    SYNCED = "synced"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class CompletedAdmission:
    index: int
    # Fanfare's answer as the history shows it (status code, latency, already completed).
    details: dict[str, Any]


@dataclass
class AttemptRecord:
    """One attempt at an order's pending admissions, as the single write after it records it."""

    attempt: int
    completed: list[CompletedAdmission] = field(default_factory=list)
    end: AttemptEnd = AttemptEnd.SYNCED
    reason: str = ""
    retry_in_seconds: int | None = None
    # The admission Fanfare (or our own validation) refused, when the attempt ended FAILED because of one.
    failed_index: int | None = None
    # Fanfare calls made: completions plus the failed call, if one was made (0: refused before any call,
    # which is not counted as an attempt).
    fanfare_calls: int = 0

"""The order record the consumer keeps per order (its sync state), as the logic layer sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SyncStatus(StrEnum):
    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"


class AdmissionState(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class OrderEventName(StrEnum):
    ORDER_RECEIVED = "order_received"
    ADMISSION_COMPLETED = "fanfare_admission_completed"
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
    key: OrderKey
    sync_status: SyncStatus | None
    admissions: list[StoredAdmission] = field(default_factory=list)
    created_now: bool = False

    @property
    def pending_indexes(self) -> list[int]:
        return [i for i, a in enumerate(self.admissions) if a.state is not AdmissionState.COMPLETED]

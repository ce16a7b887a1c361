"""Find orders that stay unsynced, and re-enqueue the ones whose queue message is gone.

Stale: unsynced (pending or failed) for longer than the threshold, counted from when the order was first
recorded as paid. A failed order younger than the threshold is not stale yet; a synced order never is.

Whether an order's message is gone cannot be read from SQS without disturbing it, so it is inferred from
the order's own record:
- a *pending* order is updated on every attempt, and the longest silence the retry schedule allows is the
  10-minute delay plus the queue's visibility timeout; one silent for longer than `message_silence_seconds`
  has no message left in the completion queue (lost in an outage, or a consumer bug deleted it);
- a *failed* order's message was parked in the DLQ when it failed; after the DLQ's retention it has expired.
Either is re-enqueued, at most once per order per hour; the consumer's idempotency makes a duplicate
harmless if the inference was wrong (a message merely delayed by a long `Retry-After`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fanfare_sync.models.orders import OrderKey, SyncStatus
from fanfare_sync.models.queue_message import Admission, OrderEventKind, OrderMessage, Platform

REQUEUE_TOPIC = "fanfare-sync/requeue"
MIN_SECONDS_BETWEEN_REQUEUES = 3600


@dataclass(frozen=True)
class StaleOrder:
    key: OrderKey
    sync_status: str
    unsynced_since: datetime
    age_seconds: float
    attempts: int
    last_error: str | None
    item: dict[str, Any] = field(repr=False, compare=False)


@dataclass
class StaleScan:
    stale: list[StaleOrder]
    requeued: list[OrderKey] = field(default_factory=list)

    @property
    def oldest_age_seconds(self) -> float:
        return max((order.age_seconds for order in self.stale), default=0.0)


class UnsyncedOrders(Protocol):
    def unsynced_since_before(self, cutoff: str) -> Iterable[dict[str, Any]]: ...

    def record_requeued(self, key: OrderKey, now: str, not_requeued_since: str, reason: str) -> bool: ...


class OrderQueue(Protocol):
    def send(self, message: OrderMessage) -> None: ...


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def find_stale_orders(
    orders: UnsyncedOrders, now: datetime, stale_after_seconds: float
) -> Iterator[StaleOrder]:
    cutoff = now - timedelta(seconds=stale_after_seconds)
    for item in orders.unsynced_since_before(iso(cutoff)):
        since = parse_iso(str(item["unsyncedSince"]))
        yield StaleOrder(
            key=OrderKey(str(item["platform"]), str(item["shop"]), str(item["orderId"])),
            sync_status=str(item.get("syncStatus", "")),
            unsynced_since=since,
            age_seconds=(now - since).total_seconds(),
            attempts=int(item.get("attempts", 0)),
            last_error=item.get("lastError"),
            item=item,
        )


def requeue_reason(
    order: StaleOrder, now: datetime, message_silence_seconds: float, dlq_retention_seconds: float
) -> str | None:
    """Why the order's message is presumed gone, or None while it should still be in a queue."""
    item = order.item
    if order.sync_status == SyncStatus.PENDING.value:
        last_update = parse_iso(str(item.get("updatedAt") or item["unsyncedSince"]))
        silent = (now - last_update).total_seconds()
        if silent > message_silence_seconds:
            return f"pending with no attempt for {silent:.0f} s: its queue message is gone"
    elif order.sync_status == SyncStatus.FAILED.value and item.get("failedAt"):
        parked = (now - parse_iso(str(item["failedAt"]))).total_seconds()
        if parked > dlq_retention_seconds:
            return f"failed {parked:.0f} s ago: its DLQ message has expired"
    return None


def requeue_message(order: StaleOrder, now: datetime) -> OrderMessage:
    """A fresh completion message rebuilt from the order record (the original body is not kept)."""
    item = order.item
    return OrderMessage(
        kind=OrderEventKind.PAID,
        platform=Platform(order.key.platform),
        shop=order.key.shop,
        orderId=order.key.order_id,
        topic=REQUEUE_TOPIC,
        deliveryId=f"requeue:{iso(now)}",
        eventId=item.get("lastDeliveryId") or None,
        receivedAt=iso(now),
        admissions=tuple(
            Admission(
                distributionId=str(a["distributionId"]),
                distributionType=str(a["distributionType"]),
                consumerId=str(a["consumerId"]),
            )
            for a in item.get("admissions", [])
        ),
        amount=item.get("amount") or None,
        currency=item.get("currency") or None,
        itemCount=int(item.get("itemCount", 0)),
    )


def scan_and_heal(
    orders: UnsyncedOrders,
    queue: OrderQueue,
    now: datetime,
    *,
    stale_after_seconds: float,
    message_silence_seconds: float,
    dlq_retention_seconds: float,
) -> StaleScan:
    scan = StaleScan(stale=list(find_stale_orders(orders, now, stale_after_seconds)))
    not_since = iso(now - timedelta(seconds=MIN_SECONDS_BETWEEN_REQUEUES))
    for order in scan.stale:
        reason = requeue_reason(order, now, message_silence_seconds, dlq_retention_seconds)
        if reason is None or not order.item.get("admissions"):
            continue
        # Claim first: of two overlapping runs only one sends, and a failed send is retried next hour.
        if orders.record_requeued(order.key, iso(now), not_since, reason):
            queue.send(requeue_message(order, now))
            scan.requeued.append(order.key)
    return scan

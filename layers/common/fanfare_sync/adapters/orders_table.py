"""DynamoDB adapter for the orders table: one order item plus event items (its history) per order.

Item layout (single table):
- order item: pk `ORDER#{platform}#{shop}#{orderId}`, sk `ORDER`, with the sync state, written once per
  attempt (after Fanfare answered). After a failed attempt it also carries `unsyncedShard` /
  `unsyncedSince`, the keys of the sparse `UnsyncedOrders` GSI; they are removed when it is synced, so that
  index only ever holds unsynced orders, and an order synced at its first attempt never enters it.
  Each completed admission keeps Fanfare's answer (`completion`: status code, latency, already completed,
  attempt) and `completedAt`.
- event items: same pk, sk `EVENT#{timestamp}#{seq}#{event}#{id}`, in time order (`seq` orders the
  events one attempt writes with the same timestamp): what the order item cannot say on its own, i.e. each
  failed attempt, a resumption, a requeue, a cancellation or a refund.

An order synced at its first attempt costs half a read and one write here, plus Powertools' two idempotency
writes: 3 write units, the floor of this design (DynamoDB on-demand bills each write of up to 1 KB).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from fanfare_sync.errors import DependencyUnavailableError
from fanfare_sync.models.orders import (
    AdmissionState,
    AttemptEnd,
    AttemptRecord,
    CompletedAdmission,
    OrderEventName,
    OrderKey,
    OrderState,
    StoredAdmission,
    SyncStatus,
)
from fanfare_sync.models.queue_message import OrderEventKind, OrderMessage

ORDER_SK = "ORDER"
UNSYNCED_INDEX = "UnsyncedOrders"
# Enough partitions that a flash sale's burst of pending orders never concentrates on one GSI key.
UNSYNCED_SHARDS = 16

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class OrdersTableUnavailableError(DependencyUnavailableError):
    pass


def unsynced_shard(pk: str) -> str:
    digest = hashlib.sha256(pk.encode("utf-8")).digest()
    return f"{int.from_bytes(digest[:4], 'big') % UNSYNCED_SHARDS:02d}"


def order_key(message: OrderMessage) -> OrderKey:
    return OrderKey(platform=message.platform.value, shop=message.shop, order_id=message.orderId)


def _marshal(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(_plain(value)) for name, value in values.items()}


def _plain(value: Any) -> Any:
    # DynamoDB numbers must be Decimal; floats (latencies) are rounded to what an operator reads.
    if isinstance(value, float):
        return Decimal(str(round(value, 1)))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


class OrdersTable:
    def __init__(self, table_name: str, dynamodb_client: Any) -> None:
        self._table = table_name
        self._ddb = dynamodb_client

    # ------------------------------------------------------------------ the completion flow
    def load(self, message: OrderMessage) -> OrderState:
        """The order as stored, or a fresh pending state built from the message when it is new.

        An eventually consistent read (half a read unit): a replay within the second after a sync may not
        see it, and then meets the idempotency record, which answers without calling Fanfare."""
        key = order_key(message)
        item = self._get_order(key)
        status = item.get("syncStatus")
        stored = item.get("admissions") or []
        admissions = (
            [
                StoredAdmission(
                    distribution_id=str(a["distributionId"]),
                    distribution_type=str(a["distributionType"]),
                    consumer_id=str(a["consumerId"]),
                    state=AdmissionState(a.get("state", AdmissionState.PENDING.value)),
                )
                for a in stored
            ]
            if stored
            else [
                StoredAdmission(a.distributionId, a.distributionType, a.consumerId)
                for a in message.admissions
            ]
        )
        return OrderState(
            key=key,
            sync_status=SyncStatus(status) if status else None,
            admissions=admissions,
            admissions_stored=bool(stored),
            last_error=item.get("lastError"),
        )

    def record_attempt(
        self, message: OrderMessage, state: OrderState, record: AttemptRecord, now: str
    ) -> bool:
        """Write the attempt's outcome: one write of the order item, then its history events.

        On the happy path the order never enters the sparse unsynced index (entering and leaving it would
        cost two index writes per order); it enters on its first failed attempt, dated from the webhook's
        receipt so the stale-order monitor measures the whole wait. Returns False, writing nothing, when the
        attempt did not sync the order but another delivery of it has meanwhile (nothing left to do).
        """
        key = state.key
        synced = record.end is AttemptEnd.SYNCED
        assignments = [
            "platform = :platform",
            "shop = :shop",
            "orderId = :order_id",
            # A cancellation may have arrived first: it keeps its status; the admission is used anyway.
            "#status = if_not_exists(#status, :paid)",
            "amount = :amount",
            "currency = :currency",
            "itemCount = :item_count",
            "createdAt = if_not_exists(createdAt, :now)",
            "receivedAt = if_not_exists(receivedAt, :received)",
            "paidAt = if_not_exists(paidAt, :now)",
            "updatedAt = :now",
            "lastDeliveryId = :delivery",
            "syncStatus = :sync_status",
        ]
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":platform": key.platform,
            ":shop": key.shop,
            ":order_id": key.order_id,
            ":paid": "paid",
            ":amount": message.amount or "",
            ":currency": message.currency or "",
            ":item_count": message.itemCount,
            ":now": now,
            ":received": message.receivedAt,
            ":delivery": message.deliveryId or "",
            ":sync_status": record.end.value
            if record.end is not AttemptEnd.RETRY
            else SyncStatus.PENDING.value,
        }
        assignments += _admission_assignments(state, record, now, names, values)
        removals = ""
        condition: str | None = None
        if synced:
            # Out of the sparse index (or never in it): that is what tells the monitor this order is done.
            assignments.append("syncedAt = :now")
            removals = " REMOVE unsyncedShard, unsyncedSince, lastError"
        else:
            assignments += [
                "lastError = :reason",
                "unsyncedShard = :shard",
                "unsyncedSince = if_not_exists(unsyncedSince, :received)",
            ]
            values[":reason"] = record.reason
            values[":shard"] = unsynced_shard(key.pk)
            if record.end is AttemptEnd.FAILED:
                assignments.append("failedAt = :now")
            # Never turn an order another delivery has just synced back into an unsynced one.
            condition = "attribute_not_exists(syncStatus) OR syncStatus <> :synced"
            values[":synced"] = SyncStatus.SYNCED.value
        update = f"SET {', '.join(assignments)}"
        if record.fanfare_calls:
            # One per delivery that called Fanfare (however many admissions it completed); attempts add up
            # across redeliveries, redrives and requeues: the order's whole story.
            update += " ADD attempts :one"
            values[":one"] = 1
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _marshal({"pk": key.pk, "sk": ORDER_SK}),
            "UpdateExpression": update + removals,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _marshal(values),
        }
        if condition:
            request["ConditionExpression"] = condition
        try:
            self._call("update_item", **request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise OrdersTableUnavailableError(type(error).__name__) from error
        previous_status = state.sync_status
        state.sync_status = (
            SyncStatus.PENDING if record.end is AttemptEnd.RETRY else SyncStatus(record.end.value)
        )
        for seq, (name, data) in enumerate(_attempt_events(message, state, record, previous_status)):
            self._put_event(key, name, now, data, seq)
        return True

    def record_lifecycle(self, message: OrderMessage, now: str) -> bool:
        """Record a cancellation or refund. It never touches the admissions: Fanfare admissions are
        one-time use and a cancelled order does not restore one. A refund of an order we never saw is not
        ours (refund webhooks carry no Fanfare data): returns False and records nothing."""
        key = order_key(message)
        cancelled = message.kind is OrderEventKind.CANCELLED
        known_only = not cancelled and not message.admissions
        update = (
            "SET platform = :platform, shop = :shop, orderId = :order_id, updatedAt = :now, "
            "createdAt = if_not_exists(createdAt, :now)"
        )
        update += ", #status = :cancelled, cancelledAt = :now" if cancelled else ", refundedAt = :now"
        values: dict[str, Any] = {
            ":platform": key.platform,
            ":shop": key.shop,
            ":order_id": key.order_id,
            ":now": now,
        }
        if cancelled:
            values[":cancelled"] = "cancelled"
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=_marshal({"pk": key.pk, "sk": ORDER_SK}),
                UpdateExpression=update,
                **({"ExpressionAttributeNames": {"#status": "status"}} if cancelled else {}),
                ExpressionAttributeValues=_marshal(values),
                **({"ConditionExpression": "attribute_exists(pk)"} if known_only else {}),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise OrdersTableUnavailableError(type(error).__name__) from error
        self._put_event(
            key,
            OrderEventName.ORDER_CANCELLED if cancelled else OrderEventName.ORDER_REFUNDED,
            now,
            {
                "topic": message.topic,
                "deliveryId": message.deliveryId,
                "eventId": message.eventId,
                "amount": message.amount,
                "currency": message.currency,
            },
        )
        return True

    def record_requeued(self, key: OrderKey, now: str, not_requeued_since: str, reason: str) -> bool:
        """Claim the order for a re-enqueue; False when it was requeued after `not_requeued_since` (or is
        synced). The conditional write makes "at most once per hour" hold even for overlapping monitors."""
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=_marshal({"pk": key.pk, "sk": ORDER_SK}),
                UpdateExpression="SET lastRequeuedAt = :now, updatedAt = :now ADD requeues :one",
                ConditionExpression=(
                    "attribute_exists(syncStatus) AND syncStatus <> :synced "
                    "AND (attribute_not_exists(lastRequeuedAt) OR lastRequeuedAt < :since)"
                ),
                ExpressionAttributeValues=_marshal(
                    {":now": now, ":one": 1, ":synced": SyncStatus.SYNCED.value, ":since": not_requeued_since}
                ),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise OrdersTableUnavailableError(type(error).__name__) from error
        self._put_event(key, OrderEventName.ORDER_REQUEUED, now, {"reason": reason})
        return True

    def unsynced_since_before(self, cutoff: str) -> Iterator[dict[str, Any]]:
        """Every unsynced order that has been unsynced since before `cutoff`, from the sparse index.

        One paged query per shard: the index only holds unsynced orders, so this never reads a synced one.
        """
        for shard in range(UNSYNCED_SHARDS):
            request: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": UNSYNCED_INDEX,
                "KeyConditionExpression": "unsyncedShard = :shard AND unsyncedSince < :cutoff",
                "ExpressionAttributeValues": _marshal({":shard": f"{shard:02d}", ":cutoff": cutoff}),
            }
            while True:
                page = self._call_or_raise("query", **request)
                for raw in page.get("Items", []):
                    yield _unmarshal(raw)
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------------ reads
    def order_with_history(self, key: OrderKey) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        order: dict[str, Any] | None = None
        events: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": _marshal({":pk": key.pk}),
            "ConsistentRead": True,
        }
        while True:
            page = self._call("query", **request)
            for raw in page.get("Items", []):
                item = _unmarshal(raw)
                if item["sk"] == ORDER_SK:
                    order = item
                else:
                    events.append(item)
            if "LastEvaluatedKey" not in page:
                return order, events
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------------ helpers
    def _get_order(self, key: OrderKey) -> dict[str, Any]:
        response = self._call(
            "get_item",
            TableName=self._table,
            Key=_marshal({"pk": key.pk, "sk": ORDER_SK}),
            ConsistentRead=False,
        )
        return _unmarshal(response.get("Item") or {})

    def _update_order(
        self, key: OrderKey, update: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _marshal({"pk": key.pk, "sk": ORDER_SK}),
            "UpdateExpression": update,
            "ExpressionAttributeValues": _marshal(values),
        }
        if names:
            request["ExpressionAttributeNames"] = names
        self._call_or_raise("update_item", **request)

    def _put_event(
        self, key: OrderKey, event: OrderEventName, now: str, data: dict[str, Any], seq: int = 0
    ) -> None:
        item = {
            "pk": key.pk,
            "sk": f"EVENT#{now}#{seq:02d}#{event.value}#{uuid.uuid4().hex[:8]}",
            "event": event.value,
            "at": now,
            "data": data,
        }
        self._call_or_raise("put_item", TableName=self._table, Item=_marshal(item))

    def _call(self, operation: str, **request: Any) -> Any:
        try:
            return getattr(self._ddb, operation)(**request)
        except BotoCoreError as error:
            raise OrdersTableUnavailableError(type(error).__name__) from error

    def _call_or_raise(self, operation: str, **request: Any) -> Any:
        try:
            return self._call(operation, **request)
        except ClientError as error:
            raise OrdersTableUnavailableError(type(error).__name__) from error


def _admission_assignments(
    state: OrderState, record: AttemptRecord, now: str, names: dict[str, str], values: dict[str, Any]
) -> list[str]:
    assignments: list[str] = []
    for done in record.completed:
        state.admissions[done.index].state = AdmissionState.COMPLETED
    if record.failed_index is not None:
        state.admissions[record.failed_index].state = AdmissionState.FAILED
    if state.admissions_stored:
        # Only the entries this attempt changed: a concurrent delivery's completions are never undone.
        for done in record.completed:
            assignments += [
                f"admissions[{done.index}].#state = :completed",
                f"admissions[{done.index}].completedAt = :now",
                f"admissions[{done.index}].completion = :completion{done.index}",
            ]
            values[":completed"] = AdmissionState.COMPLETED.value
            values[f":completion{done.index}"] = _completion(done, record)
        if record.failed_index is not None:
            assignments.append(f"admissions[{record.failed_index}].#state = :admission_failed")
            values[":admission_failed"] = AdmissionState.FAILED.value
        if assignments:
            names["#state"] = "state"
    else:
        completed = {done.index: done for done in record.completed}
        assignments.append("admissions = :admissions")
        values[":admissions"] = [
            {
                "distributionId": a.distribution_id,
                "distributionType": a.distribution_type,
                "consumerId": a.consumer_id,
                "state": a.state.value,
                "completedAt": now if index in completed else None,
                "completion": _completion(completed[index], record) if index in completed else None,
            }
            for index, a in enumerate(state.admissions)
        ]
    return assignments


def _completion(done: CompletedAdmission, record: AttemptRecord) -> dict[str, Any]:
    """Fanfare's answer, kept on the admission it completed (status code, latency, already completed)."""
    return {"attempt": record.attempt, **done.details}


def _attempt_events(
    message: OrderMessage, state: OrderState, record: AttemptRecord, previous_status: SyncStatus | None
) -> list[tuple[OrderEventName, dict[str, Any]]]:
    events: list[tuple[OrderEventName, dict[str, Any]]] = []
    if previous_status is SyncStatus.FAILED:
        # A redrive or a requeue brought a failed order back: say so in its history.
        events.append(
            (
                OrderEventName.SYNC_RESUMED,
                {"topic": message.topic, "deliveryId": message.deliveryId, "previousError": state.last_error},
            )
        )
    if record.end is AttemptEnd.RETRY:
        events.append(
            (
                OrderEventName.RETRY_SCHEDULED,
                {
                    "attempt": record.attempt,
                    "reason": record.reason,
                    "retryInSeconds": record.retry_in_seconds,
                },
            )
        )
    elif record.end is AttemptEnd.FAILED:
        events.append((OrderEventName.SYNC_FAILED, {"attempt": record.attempt, "reason": record.reason}))
    return events

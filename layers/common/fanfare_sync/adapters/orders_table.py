"""DynamoDB adapter for the orders table: one order item plus event items (its history) per order.

Item layout (single table):
- order item: pk `ORDER#{platform}#{shop}#{orderId}`, sk `ORDER`, with the sync state. While an order waits
  for Fanfare it also carries `unsyncedShard` / `unsyncedSince`, the keys of the sparse `UnsyncedOrders` GSI;
  they are removed when it is synced, so that index only ever holds unsynced orders.
- event items: same pk, sk `EVENT#{timestamp}#{event}#{id}`, in time order.
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

    # ------------------------------------------------------------------ writes of the completion flow
    def record_paid(self, message: OrderMessage, now: str) -> OrderState:
        """Create the order as pending, or return it as it is when a paid event was seen before."""
        key = order_key(message)
        admissions = [
            {
                "distributionId": a.distributionId,
                "distributionType": a.distributionType,
                "consumerId": a.consumerId,
                "state": AdmissionState.PENDING.value,
            }
            for a in message.admissions
        ]
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=_marshal({"pk": key.pk, "sk": ORDER_SK}),
                # A cancellation may have arrived first: it keeps its status; the admission is used anyway.
                UpdateExpression=(
                    "SET platform = :platform, shop = :shop, orderId = :order_id, "
                    "#status = if_not_exists(#status, :paid), syncStatus = :pending, "
                    "admissions = :admissions, "
                    "amount = :amount, currency = :currency, itemCount = :item_count, "
                    "createdAt = if_not_exists(createdAt, :now), paidAt = :now, updatedAt = :now, "
                    "attempts = :zero, lastDeliveryId = :delivery, "
                    "unsyncedShard = :shard, unsyncedSince = :now"
                ),
                ConditionExpression="attribute_not_exists(syncStatus)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_marshal(
                    {
                        ":platform": key.platform,
                        ":shop": key.shop,
                        ":order_id": key.order_id,
                        ":paid": "paid",
                        ":pending": SyncStatus.PENDING.value,
                        ":admissions": admissions,
                        ":amount": message.amount or "",
                        ":currency": message.currency or "",
                        ":item_count": message.itemCount,
                        ":now": now,
                        ":zero": 0,
                        ":delivery": message.deliveryId or "",
                        ":shard": unsynced_shard(key.pk),
                    }
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise OrdersTableUnavailableError(type(error).__name__) from error
            existing = _unmarshal(error.response.get("Item") or {}) or self._get_order(key)
            state = _order_state(key, existing)
            if state.sync_status is SyncStatus.FAILED:
                # A redrive or a requeue brought a failed order back: say so in its history.
                self._put_event(
                    key,
                    OrderEventName.SYNC_RESUMED,
                    now,
                    {
                        "topic": message.topic,
                        "deliveryId": message.deliveryId,
                        "previousError": existing.get("lastError"),
                    },
                )
            return state
        self._put_event(
            key,
            OrderEventName.ORDER_RECEIVED,
            now,
            {
                "kind": message.kind.value,
                "topic": message.topic,
                "deliveryId": message.deliveryId,
                "eventId": message.eventId,
                "receivedAt": message.receivedAt,
                "admissions": len(admissions),
                "amount": message.amount,
                "currency": message.currency,
            },
        )
        return OrderState(
            key=key,
            sync_status=SyncStatus.PENDING,
            admissions=[
                StoredAdmission(a["distributionId"], a["distributionType"], a["consumerId"])
                for a in admissions
            ],
            created_now=True,
        )

    def record_admission_completed(
        self, state: OrderState, index: int, attempt: int, now: str, details: dict[str, Any]
    ) -> None:
        state.admissions[index].state = AdmissionState.COMPLETED
        synced = not state.pending_indexes
        assignments = [
            f"admissions[{index}].#state = :completed",
            f"admissions[{index}].completedAt = :now",
            "updatedAt = :now",
        ]
        values: dict[str, Any] = {":completed": AdmissionState.COMPLETED.value, ":now": now, ":one": 1}
        removals = ""
        if synced:
            # Leaving the sparse index is what tells the stale-order monitor this order is done.
            assignments += ["syncStatus = :synced", "syncedAt = :now"]
            values[":synced"] = SyncStatus.SYNCED.value
            removals = " REMOVE unsyncedShard, unsyncedSince, lastError"
            state.sync_status = SyncStatus.SYNCED
        # Attempts add up across redeliveries, redrives and requeues: the order's whole story.
        update = f"SET {', '.join(assignments)} ADD attempts :one{removals}"
        self._update_order(state.key, update, values, {"#state": "state"})
        admission = state.admissions[index]
        self._put_event(
            state.key,
            OrderEventName.ADMISSION_COMPLETED,
            now,
            {
                "distributionId": admission.distribution_id,
                "distributionType": admission.distribution_type,
                "consumerId": admission.consumer_id,
                "attempt": attempt,
                "orderSynced": synced,
                **details,
            },
        )

    def record_retry(self, key: OrderKey, attempt: int, reason: str, delay_seconds: int, now: str) -> None:
        self._update_order(
            key,
            # Attempts add up across redeliveries, redrives and requeues: the order's whole story.
            "SET lastError = :reason, updatedAt = :now ADD attempts :one",
            {":reason": reason, ":one": 1, ":now": now},
        )
        self._put_event(
            key,
            OrderEventName.RETRY_SCHEDULED,
            now,
            {"attempt": attempt, "reason": reason, "retryInSeconds": delay_seconds},
        )

    def record_failed(
        self,
        state: OrderState,
        attempt: int,
        reason: str,
        now: str,
        *,
        index: int | None,
        attempted: bool = True,
    ) -> None:
        """The order stays in the unsynced index: a failed order is still an unsynced order.

        `attempted` is False when the request was refused before any call (it is not a Fanfare attempt).
        """
        assignments = ["syncStatus = :failed", "lastError = :reason", "failedAt = :now", "updatedAt = :now"]
        values: dict[str, Any] = {":failed": SyncStatus.FAILED.value, ":reason": reason, ":now": now}
        names: dict[str, str] = {}
        if index is not None:
            assignments.append(f"admissions[{index}].#state = :admission_failed")
            values[":admission_failed"] = AdmissionState.FAILED.value
            names["#state"] = "state"
            state.admissions[index].state = AdmissionState.FAILED
        update = f"SET {', '.join(assignments)}"
        if attempted:
            update += " ADD attempts :one"
            values[":one"] = 1
        self._update_order(state.key, update, values, names)
        state.sync_status = SyncStatus.FAILED
        self._put_event(state.key, OrderEventName.SYNC_FAILED, now, {"attempt": attempt, "reason": reason})

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
            ConsistentRead=True,
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

    def _put_event(self, key: OrderKey, event: OrderEventName, now: str, data: dict[str, Any]) -> None:
        item = {
            "pk": key.pk,
            "sk": f"EVENT#{now}#{event.value}#{uuid.uuid4().hex[:8]}",
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


def _order_state(key: OrderKey, item: dict[str, Any]) -> OrderState:
    status = item.get("syncStatus")
    return OrderState(
        key=key,
        sync_status=SyncStatus(status) if status else None,
        admissions=[
            StoredAdmission(
                distribution_id=str(a["distributionId"]),
                distribution_type=str(a["distributionType"]),
                consumer_id=str(a["consumerId"]),
                state=AdmissionState(a.get("state", AdmissionState.PENDING.value)),
            )
            for a in item.get("admissions", [])
        ],
    )

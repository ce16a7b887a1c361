"""The deployed sandbox's state in one DynamoDB table (template.yaml `FanfareSandboxTable`).

Lambda runs as many instances of the sandbox as there are concurrent requests, and recycles them at will;
in-memory state would split the completions between instances and forget them on a cold start. So every
instance reads and writes here, with the same guarantees `MemoryStore` gives under its lock:

* a completion is recorded once (conditional put): concurrent duplicates get one 200 and 409s;
* a fault rule's `times` is used up exactly once per request (optimistic version check, retried);
* request records and completions expire by TTL, so a long-lived staging sandbox does not grow forever.

Items (`pk`, `sk`): `REQUEST`/zero-padded id, `COMPLETION`/type#distribution#consumer, and `CONTROL`/
`FAULTS` | `SETTINGS` | `REQUEST_COUNTER`. Documents are stored as JSON strings (`doc`), as the control API
shows them. The fault dice are per instance, so a `seed` makes one instance reproducible, not the fleet.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, Final, cast

from botocore.exceptions import ClientError

from fanfare_sync_cli.sandbox.server import (
    MAX_RECORDS,
    Faults,
    InjectedFault,
    RecordedCompletion,
    RecordedRequest,
    RepeatCompletion,
    choose_fault,
    now_iso,
)

REQUEST_TTL_SECONDS: Final = 7 * 24 * 3600
COMPLETION_TTL_SECONDS: Final = 30 * 24 * 3600
_CONTROL: Final = "CONTROL"
_REQUEST: Final = "REQUEST"
_COMPLETION: Final = "COMPLETION"
# A fault rule being used up by many concurrent requests conflicts a few times at most; this bounds a bug.
_MAX_FAULT_UPDATE_ATTEMPTS: Final = 20


class DynamoDBStore:
    """`SandboxStore` on DynamoDB; `client` is a boto3 DynamoDB client."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        default_repeat_completion: RepeatCompletion = "conflict",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._ddb = client
        self._default_repeat_completion: RepeatCompletion = default_repeat_completion
        self._clock = clock
        self._dice = random.Random()  # noqa: S311 - fault dice, not cryptography

    # --- requests ---------------------------------------------------------------------------------------

    def allocate_request_id(self) -> int:
        response = self._ddb.update_item(
            TableName=self._table,
            Key=_key(_CONTROL, "REQUEST_COUNTER"),
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["n"]["N"])

    def record(self, entry: RecordedRequest) -> None:
        self._put_document(_REQUEST, f"{entry['id']:012d}", entry, REQUEST_TTL_SECONDS)

    def annotate(self, entry: RecordedRequest, *, status: int | None, fault: str | None) -> None:
        entry["status"] = status
        entry["fault"] = fault
        self.record(entry)

    def requests(self) -> list[RecordedRequest]:
        # Newest first, so the bound keeps the latest; shown oldest first, as the local sandbox does.
        newest = [cast(RecordedRequest, doc) for doc in self._documents(_REQUEST, newest_first=True)]
        return list(reversed(newest))

    # --- faults and settings ----------------------------------------------------------------------------

    def faults(self) -> Faults:
        faults, _ = self._load_faults()
        return faults

    def set_faults(self, faults: Faults) -> None:
        self._ddb.update_item(
            TableName=self._table,
            Key=_key(_CONTROL, "FAULTS"),
            UpdateExpression="SET #doc = :doc ADD #version :one",
            ExpressionAttributeNames={"#doc": "doc", "#version": "version"},
            ExpressionAttributeValues={":doc": {"S": json.dumps(faults.to_json())}, ":one": {"N": "1"}},
        )
        if faults.seed is not None:
            self._dice.seed(faults.seed)

    def pick_fault(self, distribution_id: str, consumer_id: str) -> InjectedFault | None:
        for _ in range(_MAX_FAULT_UPDATE_ATTEMPTS):
            faults, version = self._load_faults()
            fault, used_up = choose_fault(faults, self._dice, distribution_id, consumer_id)
            if not used_up:
                return fault
            try:
                self._ddb.update_item(
                    TableName=self._table,
                    Key=_key(_CONTROL, "FAULTS"),
                    UpdateExpression="SET #doc = :doc, #version = :next",
                    ConditionExpression="#version = :seen",
                    ExpressionAttributeNames={"#doc": "doc", "#version": "version"},
                    ExpressionAttributeValues={
                        ":doc": {"S": json.dumps(faults.to_json())},
                        ":next": {"N": str(version + 1)},
                        ":seen": {"N": str(version)},
                    },
                )
            except ClientError as error:
                if _code(error) != "ConditionalCheckFailedException":
                    raise
                continue  # another request used the rule (or faults were replaced): decide again
            return fault
        raise RuntimeError("the fault rules kept changing while a request tried to use one")

    def _load_faults(self) -> tuple[Faults, int]:
        item = self._get(_CONTROL, "FAULTS")
        if item is None:
            return Faults(), 0
        return Faults.from_json(json.loads(item["doc"]["S"])), int(item["version"]["N"])

    def repeat_completion(self) -> RepeatCompletion:
        item = self._get(_CONTROL, "SETTINGS")
        if item is None:
            return self._default_repeat_completion
        return cast(RepeatCompletion, item["repeat_completion"]["S"])

    def set_repeat_completion(self, mode: RepeatCompletion) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item={**_key(_CONTROL, "SETTINGS"), "repeat_completion": {"S": mode}},
        )

    # --- completions ------------------------------------------------------------------------------------

    def complete(
        self,
        distribution_type: str,
        distribution_id: str,
        consumer_id: str,
        metadata: dict[str, Any] | None,
        request_id: int,
    ) -> tuple[RecordedCompletion, bool]:
        sort_key = f"{distribution_type}#{distribution_id}#{consumer_id}"
        completion: RecordedCompletion = {
            "distribution_type": distribution_type,
            "distribution_id": distribution_id,
            "consumer_id": consumer_id,
            "metadata": metadata,
            "completed_at": now_iso(),
            "request_id": request_id,
        }
        try:
            self._put_document(_COMPLETION, sort_key, completion, COMPLETION_TTL_SECONDS, only_if_new=True)
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            existing = self._get(_COMPLETION, sort_key)
            if existing is None:  # expired between the two calls: this one is the completion now
                return self.complete(distribution_type, distribution_id, consumer_id, metadata, request_id)
            return cast(RecordedCompletion, json.loads(existing["doc"]["S"])), False
        return completion, True

    def completions(self) -> list[RecordedCompletion]:
        found = [cast(RecordedCompletion, doc) for doc in self._documents(_COMPLETION, newest_first=False)]
        return sorted(found, key=lambda c: (c["completed_at"], c["request_id"]))

    # --- reset ------------------------------------------------------------------------------------------

    def reset(self) -> None:
        keys = [_key(pk, sk) for pk in (_REQUEST, _COMPLETION) for sk in self._sort_keys(pk)]
        keys += [_key(_CONTROL, "FAULTS"), _key(_CONTROL, "SETTINGS")]
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {
                self._table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            }
            while pending:
                response = self._ddb.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    # --- plumbing ---------------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._ddb.get_item(TableName=self._table, Key=_key(pk, sk), ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _put_document(
        self, pk: str, sk: str, document: Any, ttl_seconds: int, *, only_if_new: bool = False
    ) -> None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                **_key(pk, sk),
                "doc": {"S": json.dumps(document)},
                "expiresAt": {"N": str(int(self._clock()) + ttl_seconds)},
            },
        }
        if only_if_new:
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        self._ddb.put_item(**request)

    def _pages(self, pk: str, *, newest_first: bool, projection: str | None = None) -> Iterator[Any]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if projection:
            request["ProjectionExpression"] = projection
        while True:
            response = self._ddb.query(**request)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _documents(self, pk: str, *, newest_first: bool) -> list[Any]:
        now = int(self._clock())
        documents = []
        for item in self._pages(pk, newest_first=newest_first):
            if int(item.get("expiresAt", {}).get("N", now + 1)) <= now:
                continue  # TTL deletes lag by up to days; an expired record is already gone
            documents.append(json.loads(item["doc"]["S"]))
            if len(documents) >= MAX_RECORDS:
                break
        return documents

    def _sort_keys(self, pk: str) -> list[str]:
        return [item["sk"]["S"] for item in self._pages(pk, newest_first=False, projection="pk, sk")]


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))

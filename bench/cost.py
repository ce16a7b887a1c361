"""Benchmark 7: dollars per million orders, from requests counted on the real code path.

A measured run sends orders through the warm ingest handler, then through the consumer the way the SQS event
source mapping does (receive 10, invoke, delete the batch), with every AWS API call of this process counted by
a wrapper around botocore's `_make_api_call`. DynamoDB writes are priced in write request units from the
items themselves: a probe reads the item before and after each write (outside the count) to size it and to
see what the write did to each global secondary index (an item entering, leaving or changing in a sparse
index costs index writes too). Lambda durations are the ones measured by the ingest and batch benchmarks,
at the memory sizes in template.yaml; log bytes are what the handlers printed during the run.
"""

from __future__ import annotations

import base64
import math
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any

import botocore.client
from botocore.exceptions import ClientError

from bench.common import (
    CONSUMER_FUNCTION,
    INGEST_FUNCTION,
    LOG_SINK,
    LocalAws,
    Result,
    expect_status,
    fanfare_order,
    next_order_number,
    say,
    scaled,
    shopify_event,
    shopify_request,
)
from fanfare_sync_cli.local.function_worker import Invocation
from fanfare_sync_cli.local.moto_server import LOCAL_REGION
from fanfare_sync_cli.local.sqs_poller import SqsEventSource

if TYPE_CHECKING:  # the batch benchmark imports this module's call counter
    from bench.batch import BatchMeasurements
    from bench.ingest import IngestMeasurements

TARGET_DOLLARS = 5.0
ORDERS = scaled(100, 20)

# ------------------------------------------------------------------------------------------- prices
# us-east-1 list prices, first tier, no free tier, as given in issue 6 and on the AWS pricing pages
# (aws.amazon.com/api-gateway/pricing, /lambda/pricing, /sqs/pricing, /dynamodb/pricing/on-demand,
# /secrets-manager/pricing, /cloudwatch/pricing). DynamoDB on-demand is the price after the November 2024
# reduction. Check them against the pages before quoting a figure outside this repository.
PRICE_MONTH = "2025-11"
PRICE_DATE = f"{PRICE_MONTH} (us-east-1 list prices, first tier, no free tier)"
HTTP_API_PER_MILLION_REQUESTS = 1.00
LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
SQS_STANDARD_PER_MILLION_REQUESTS = 0.40
DYNAMODB_PER_MILLION_WRU = 0.625
DYNAMODB_PER_MILLION_RRU = 0.125
SECRETS_MANAGER_PER_10K_CALLS = 0.05
CLOUDWATCH_LOGS_PER_GB = 0.50

# ------------------------------------------------------------------------------------------- assumptions
# Each function re-reads its secret when Powertools' cache expires (300 s). A warm run makes no such call;
# this charges one read per 1,000 orders for container churn, which is pessimistic for a flash sale.
SECRETS_CALLS_PER_ORDER_ASSUMED = 1 / 1000
# PutLogEvents counts 26 bytes of metadata per event (its batch-size rule); charged here as ingested bytes.
LOG_EVENT_OVERHEAD_BYTES = 26
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


@dataclass(frozen=True)
class IndexShape:
    name: str
    keys: tuple[str, ...]
    projection: str
    non_key: tuple[str, ...]


@dataclass(frozen=True)
class TableShape:
    logical_id: str
    keys: tuple[str, ...]
    indexes: tuple[IndexShape, ...]


@dataclass
class Tally:
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    write_units: Counter[str] = field(default_factory=Counter)
    read_units: dict[str, float] = field(default_factory=dict)
    messages_received: int = 0
    empty_receives: int = 0
    # Largest item written per table and operation: how close each write is to the next 1 KB unit.
    largest_item_bytes: dict[str, int] = field(default_factory=dict)


class ApiCallCounter:
    """Counts every AWS call made in this process while installed; prices DynamoDB requests in units."""

    def __init__(self, aws: LocalAws) -> None:
        self.tally = Tally()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._tables = _table_shapes(aws)
        self._probe = aws.moto.client("dynamodb")
        self._original: Any = None

    def install(self) -> None:
        original = botocore.client.BaseClient._make_api_call
        self._original = original
        counter = self

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            return counter._call(original, client, operation, params)

        botocore.client.BaseClient._make_api_call = counted

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.client.BaseClient._make_api_call = self._original
            self._original = None

    def _call(self, original: Any, client: Any, operation: str, params: dict[str, Any]) -> Any:
        if getattr(self._local, "probing", False):
            return original(client, operation, params)
        service = client.meta.service_model.service_name
        with self._lock:
            self.tally.calls[(service, operation)] += 1
        table = self._tables.get(params.get("TableName", "")) if service == "dynamodb" else None
        if table is not None and operation in _WRITES:
            return self._priced_write(original, client, operation, params, table)
        response = original(client, operation, params)
        if table is not None:
            self._price_read(operation, params, response, table)
        if service == "sqs" and operation == "ReceiveMessage":
            received = len(response.get("Messages", []))
            with self._lock:
                self.tally.messages_received += received
                self.tally.empty_receives += received == 0
        return response

    def _priced_write(
        self, original: Any, client: Any, operation: str, params: dict[str, Any], table: TableShape
    ) -> Any:
        source = params["Item"] if operation == "PutItem" else params["Key"]
        key = {name: source[name] for name in table.keys}
        before = self._get(params["TableName"], key)
        try:
            response = original(client, operation, params)
        except ClientError:
            # A failed conditional write still consumes the units of the item it was checked against.
            self._add_write(table, operation, before, before, failed=True)
            raise
        after = None if operation == "DeleteItem" else self._get(params["TableName"], key)
        self._add_write(table, operation, before, after, failed=False)
        return response

    def _get(self, table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        self._local.probing = True
        try:
            item: dict[str, Any] | None = self._probe.get_item(
                TableName=table_name, Key=key, ConsistentRead=True
            ).get("Item")
            return item
        finally:
            self._local.probing = False

    def _add_write(
        self,
        table: TableShape,
        operation: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        failed: bool,
    ) -> None:
        size = max(item_size(before or {}), item_size(after or {}))
        units = {f"{table.logical_id} {operation}": _units(size, WRITE_UNIT_BYTES)}
        if not failed:
            for index in table.indexes:
                index_units = _index_write_units(index, table.keys, before, after)
                if index_units:
                    units[f"{table.logical_id} GSI {index.name}"] = index_units
        with self._lock:
            self.tally.write_units.update(units)
            name = f"{table.logical_id} {operation}"
            self.tally.largest_item_bytes[name] = max(self.tally.largest_item_bytes.get(name, 0), size)

    def _price_read(
        self, operation: str, params: dict[str, Any], response: dict[str, Any], table: TableShape
    ) -> None:
        if operation == "GetItem":
            size = item_size(response.get("Item") or {})
        elif operation == "Query":
            size = sum(item_size(item) for item in response.get("Items", []))
        else:
            return
        factor = 1.0 if params.get("ConsistentRead") else 0.5
        with self._lock:
            name = f"{table.logical_id} {operation}"
            self.tally.read_units[name] = (
                self.tally.read_units.get(name, 0.0) + _units(size, READ_UNIT_BYTES) * factor
            )


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _index_write_units(
    index: IndexShape,
    table_keys: tuple[str, ...],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> int:
    """Index writes caused by one table write (DynamoDB developer guide, "Provisioned throughput
    considerations for global secondary indexes"): entering or leaving the index is one write, changing
    its key is a delete and a put, changing a projected attribute is one write, anything else none."""
    was_in = before is not None and all(k in before for k in index.keys)
    is_in = after is not None and all(k in after for k in index.keys)
    old = _projected(index, table_keys, before) if was_in and before is not None else None
    new = _projected(index, table_keys, after) if is_in and after is not None else None
    if old is not None and new is not None:
        if any(old[k] != new[k] for k in index.keys):
            return _units(item_size(old), WRITE_UNIT_BYTES) + _units(item_size(new), WRITE_UNIT_BYTES)
        return _units(item_size(new), WRITE_UNIT_BYTES) if old != new else 0
    if old is not None:
        return _units(item_size(old), WRITE_UNIT_BYTES)
    if new is not None:
        return _units(item_size(new), WRITE_UNIT_BYTES)
    return 0


def _projected(index: IndexShape, table_keys: tuple[str, ...], item: dict[str, Any]) -> dict[str, Any]:
    if index.projection == "ALL":
        return dict(item)
    names = set(table_keys) | set(index.keys)
    if index.projection == "INCLUDE":
        names |= set(index.non_key)
    return {name: value for name, value in item.items() if name in names}


def item_size(item: dict[str, Any]) -> int:
    """A DynamoDB item's size by the documented rules (names + values; lists and maps 3 bytes + 1 per
    element; numbers ~1 byte per two significant digits + 1)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "N":
        return _number_size(str(data))
    if kind == "B":
        return len(data) if isinstance(data, bytes) else len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(_value_size(element) + 1 for element in data)
    if kind == "M":
        return 3 + sum(len(name.encode("utf-8")) + _value_size(element) + 1 for name, element in data.items())
    if kind == "SS":
        return sum(len(element.encode("utf-8")) for element in data)
    if kind == "NS":
        return sum(_number_size(element) for element in data)
    if kind == "BS":
        return sum(len(element) for element in data)
    raise ValueError(f"unknown DynamoDB type {kind}")


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return (len(digits) + 1) // 2 + 1


def _table_shapes(aws: LocalAws) -> dict[str, TableShape]:
    """Key schemas and indexes of the template's tables, by their physical (moto) names."""
    shapes: dict[str, TableShape] = {}
    for logical_id, resource in aws.template["Resources"].items():
        if resource.get("Type") != "AWS::DynamoDB::Table" or logical_id not in aws.stack.resources:
            continue
        props = resource["Properties"]
        indexes = tuple(
            IndexShape(
                name=index["IndexName"],
                keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
                projection=index.get("Projection", {}).get("ProjectionType", "ALL"),
                non_key=tuple(index.get("Projection", {}).get("NonKeyAttributes", [])),
            )
            for index in props.get("GlobalSecondaryIndexes", [])
        )
        keys = tuple(k["AttributeName"] for k in props["KeySchema"])
        shapes[aws.stack.ref(logical_id)] = TableShape(logical_id, keys, indexes)
    return shapes


# ------------------------------------------------------------------------------------------- log lines
def platform_log_bytes(aws: LocalAws, memory_mb: int) -> int:
    """Lambda's own START / END / REPORT lines of one invocation, when the template's system log level
    writes them (they are INFO lines: the default LambdaSystemLogLevel, WARN, leaves them out)."""
    level = aws.template["Parameters"]["LambdaSystemLogLevel"]["Default"]
    if level not in ("INFO", "DEBUG"):
        return 0
    request_id = str(uuid.uuid4())
    lines = [
        f"START RequestId: {request_id} Version: $LATEST",
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: 97 MB\t",
    ]
    return sum(len(line) + 1 + LOG_EVENT_OVERHEAD_BYTES for line in lines)


_ACCESS_LOG_SAMPLE = {
    "requestId": "Jf3xqhV4IAMEV5w=",
    "identity.sourceIp": "203.0.113.10",
    "requestTime": "27/Nov/2026:15:00:05 +0000",
    "routeKey": "POST /webhooks/shopify",
    "status": "200",
    "responseLength": "38",
    "integrationLatency": "14",
    "responseLatency": "16",
    "integrationErrorMessage": "-",
}


def access_log_bytes(aws: LocalAws) -> int:
    """One HTTP API access log line: the template's own format with typical values filled in."""
    api = aws.template["Resources"]["WebhookApi"]["Properties"]
    template = str(api.get("AccessLogSettings", {}).get("Format", ""))
    if not template:
        return 0
    line = re.sub(
        r"\$context\.([A-Za-z.]+)", lambda m: _ACCESS_LOG_SAMPLE.get(m.group(1), "-"), template.strip()
    )
    return len(line.encode("utf-8")) + 1 + LOG_EVENT_OVERHEAD_BYTES


# ------------------------------------------------------------------------------------------- the run
@dataclass
class CountedRun:
    orders: int
    tally: Tally
    ingest_invocations: int
    consumer_invocations: int
    ingest_log_bytes: int
    ingest_log_lines: int
    consumer_log_bytes: int
    consumer_log_lines: int


def counted_run(aws: LocalAws, ingest: ModuleType, consumer: ModuleType) -> CountedRun:
    aws.sandbox.clear_faults()
    aws.purge_queue()
    ingest_context = aws.context(INGEST_FUNCTION)
    consumer_context = aws.context(CONSUMER_FUNCTION)
    orders = [fanfare_order(next_order_number()) for _ in range(ORDERS)]
    events = [shopify_event(*shopify_request(o, webhook_id=f"wh-{o.order_id}")) for o in orders]
    counter = ApiCallCounter(aws)
    invocations = 0

    def invoke(event: dict[str, Any]) -> Invocation:
        nonlocal invocations
        invocations += 1
        return Invocation(payload=consumer.lambda_handler(event, consumer_context))

    batch_size = next(t.batch_size for t in aws.specs[CONSUMER_FUNCTION].sqs_triggers)
    source = SqsEventSource(
        aws.client("sqs"), aws.queue_url, aws.queue_arn, LOCAL_REGION, invoke, batch_size=batch_size
    )
    say(f"  cost model: {ORDERS} orders through ingest and the consumer, every AWS call counted")
    counter.install()
    try:
        start_bytes, start_lines = LOG_SINK.snapshot()
        for event in events:
            expect_status(ingest.lambda_handler(event, ingest_context), 200, "queued")
        mid_bytes, mid_lines = LOG_SINK.snapshot()
        while source.poll_once():
            pass
        end_bytes, end_lines = LOG_SINK.snapshot()
    finally:
        counter.uninstall()
    completed = {c["consumer_id"] for c in aws.sandbox.completions()}
    missing = [o.order_id for o in orders if o.admissions[0].consumer_id not in completed]
    if missing:
        raise RuntimeError(f"cost run: {len(missing)} orders were not completed, e.g. {missing[:3]}")
    return CountedRun(
        orders=ORDERS,
        tally=counter.tally,
        ingest_invocations=len(events),
        consumer_invocations=invocations,
        ingest_log_bytes=mid_bytes - start_bytes,
        ingest_log_lines=mid_lines - start_lines,
        consumer_log_bytes=end_bytes - mid_bytes,
        consumer_log_lines=end_lines - mid_lines,
    )


def run(
    aws: LocalAws,
    ingest: ModuleType,
    consumer: ModuleType,
    ingest_measured: IngestMeasurements,
    batch_measured: BatchMeasurements,
) -> Result:
    counted = counted_run(aws, ingest, consumer)
    n = counted.orders
    calls = counted.tally.calls
    ingest_mb = aws.specs[INGEST_FUNCTION].memory_mb
    consumer_mb = aws.specs[CONSUMER_FUNCTION].memory_mb
    per_order: dict[str, float] = {}

    # Requests per order, counted.
    per_order["api_requests"] = counted.ingest_invocations / n
    per_order["lambda_invocations"] = (counted.ingest_invocations + counted.consumer_invocations) / n
    sqs_requests = (
        sum(v for (service, op), v in calls.items() if service == "sqs") - counted.tally.empty_receives
    )
    per_order["sqs_requests"] = sqs_requests / n
    per_order["dynamodb_wru"] = sum(counted.tally.write_units.values()) / n
    per_order["dynamodb_rru"] = sum(counted.tally.read_units.values()) / n
    secrets_counted = sum(v for (service, _), v in calls.items() if service == "secretsmanager") / n
    per_order["secrets_manager_calls"] = secrets_counted + SECRETS_CALLS_PER_ORDER_ASSUMED

    # Lambda compute: measured durations (billed per started ms) at the template's memory sizes.
    ingest_ms = math.ceil(ingest_measured.handler_seconds.median * 1000)
    batch_ms = math.ceil(batch_measured.batch_seconds.median * 1000)
    ingest_gbs = ingest_mb / 1024 * ingest_ms / 1000
    consumer_gbs = consumer_mb / 1024 * batch_ms / 1000 * counted.consumer_invocations / n

    # Logs: what the handlers printed, plus Lambda's platform lines and the API access log line.
    handler_log_events = (counted.ingest_log_lines + counted.consumer_log_lines) / n
    log_parts = {
        "ingest handler (log line, EMF metrics)": counted.ingest_log_bytes / n,
        "consumer handler (per record line, EMF per batch)": counted.consumer_log_bytes / n,
        "26 B per handler log event": handler_log_events * LOG_EVENT_OVERHEAD_BYTES,
        "Lambda START/END/REPORT": platform_log_bytes(aws, ingest_mb)
        + platform_log_bytes(aws, consumer_mb) * counted.consumer_invocations / n,
        "HTTP API access log": access_log_bytes(aws),
    }
    log_bytes = sum(log_parts.values())
    per_order["log_bytes"] = log_bytes

    million = 1_000_000
    breakdown = {
        "HTTP API requests": per_order["api_requests"] * HTTP_API_PER_MILLION_REQUESTS,
        "Lambda requests": per_order["lambda_invocations"] * LAMBDA_PER_MILLION_REQUESTS,
        "Lambda compute (ingest)": ingest_gbs * LAMBDA_ARM64_PER_GB_SECOND * million,
        "Lambda compute (consumer)": consumer_gbs * LAMBDA_ARM64_PER_GB_SECOND * million,
        "SQS requests": per_order["sqs_requests"] * SQS_STANDARD_PER_MILLION_REQUESTS,
        "DynamoDB writes": per_order["dynamodb_wru"] * DYNAMODB_PER_MILLION_WRU,
        "DynamoDB reads": per_order["dynamodb_rru"] * DYNAMODB_PER_MILLION_RRU,
        "Secrets Manager": per_order["secrets_manager_calls"] * SECRETS_MANAGER_PER_10K_CALLS * 100,
        "CloudWatch Logs": log_bytes * million / 1e9 * CLOUDWATCH_LOGS_PER_GB,
    }
    total = sum(breakdown.values())

    # The floor: what no design of this architecture avoids. One API request and one ingest invocation,
    # one SendMessage plus its share of a full batch's receive and delete, one consumer invocation per
    # batch, Powertools' two idempotency writes and one write of the order; compute for a bare SendMessage
    # and one Fanfare round trip per batch; no logs (platform logs can be turned off).
    batch = batch_measured.batch_size
    bare_send_ms = math.ceil(ingest_measured.bare_send_seconds.median * 1000)
    floor = {
        "HTTP API requests": 1 * HTTP_API_PER_MILLION_REQUESTS,
        "Lambda requests": (1 + 1 / batch) * LAMBDA_PER_MILLION_REQUESTS,
        "Lambda compute (ingest)": ingest_mb
        / 1024
        * bare_send_ms
        / 1000
        * LAMBDA_ARM64_PER_GB_SECOND
        * million,
        "Lambda compute (consumer)": consumer_mb
        / 1024
        * 0.050
        / batch
        * LAMBDA_ARM64_PER_GB_SECOND
        * million,
        "SQS requests": (1 + 2 / batch) * SQS_STANDARD_PER_MILLION_REQUESTS,
        "DynamoDB writes": 3 * DYNAMODB_PER_MILLION_WRU,
    }
    floor_total = sum(floor.values())
    writes = {name: units / n for name, units in sorted(counted.tally.write_units.items())}
    passed = total <= TARGET_DOLLARS

    say(f"    prices: {PRICE_DATE}")
    say(f"    {'item':<28} {'$/M orders':>10} {'floor':>8}")
    for name, dollars in breakdown.items():
        say(f"    {name:<28} {dollars:>10.3f} {floor.get(name, 0.0):>8.3f}")
    say(f"    {'total':<28} {total:>10.3f} {floor_total:>8.3f}")
    say("    DynamoDB write units per order: " + ", ".join(f"{k} {v:.2f}" for k, v in writes.items()))
    say("    log bytes per order: " + ", ".join(f"{k} {v:.0f}" for k, v in log_parts.items()))

    note = ""
    if not passed:
        biggest = sorted(breakdown.items(), key=lambda item: -item[1])[:3]
        # What the measured figures say each proposed change would save (see the final report).
        index_units = sum(v for k, v in writes.items() if " GSI " in k)
        event_units = writes.get("OrdersTable PutItem", 0.0)
        handler_logs = (
            log_parts["ingest handler (log line, EMF metrics)"]
            + log_parts["consumer handler (per record line, EMF per batch)"]
        )
        note = (
            f"${total:.2f}/M against a floor of ${floor_total:.2f}/M; largest: "
            + ", ".join(f"{name} ${dollars:.2f}" for name, dollars in biggest)
            + f"; {per_order['dynamodb_wru']:.1f} WRU per order where the floor is 3, of which the sparse "
            f"index {index_units:.1f} WRU (${index_units * DYNAMODB_PER_MILLION_WRU:.2f}/M) and put items "
            f"(history events) {event_units:.1f} WRU (${event_units * DYNAMODB_PER_MILLION_WRU:.2f}/M); "
            f"the handlers log {handler_logs:.0f} B per order "
            f"(${handler_logs * million / 1e9 * CLOUDWATCH_LOGS_PER_GB:.2f}/M)"
        )
    return Result(
        key="cost_model",
        title="cost model",
        measured=f"${total:.2f} per million orders (floor ${floor_total:.2f}; prices {PRICE_MONTH})",
        target=f"≤ ${TARGET_DOLLARS:.0f} per million orders",
        passed=passed,
        figures={
            "dollars_per_million_orders": round(total, 3),
            "floor_dollars_per_million_orders": round(floor_total, 3),
            "breakdown": {k: round(v, 4) for k, v in breakdown.items()},
            "floor": {k: round(v, 4) for k, v in floor.items()},
            "per_order": {k: round(v, 4) for k, v in per_order.items()},
            "dynamodb_write_units_per_order": {k: round(v, 3) for k, v in writes.items()},
            "log_bytes_per_order": {k: round(v) for k, v in log_parts.items()},
            "largest_item_bytes": dict(sorted(counted.tally.largest_item_bytes.items())),
            "dynamodb_read_units_per_order": {
                k: round(v / n, 3) for k, v in sorted(counted.tally.read_units.items())
            },
            "api_calls_per_order": {f"{s} {op}": round(v / n, 3) for (s, op), v in sorted(calls.items())},
            "ingest_billed_ms": ingest_ms,
            "consumer_batch_billed_ms": batch_ms,
            "memory_mb": {"ingest": ingest_mb, "consumer": consumer_mb},
            "orders_counted": n,
            "price_date": PRICE_DATE,
            "prices": {
                "http_api_per_million_requests": HTTP_API_PER_MILLION_REQUESTS,
                "lambda_arm64_per_gb_second": LAMBDA_ARM64_PER_GB_SECOND,
                "lambda_per_million_requests": LAMBDA_PER_MILLION_REQUESTS,
                "sqs_standard_per_million_requests": SQS_STANDARD_PER_MILLION_REQUESTS,
                "dynamodb_per_million_wru": DYNAMODB_PER_MILLION_WRU,
                "dynamodb_per_million_rru": DYNAMODB_PER_MILLION_RRU,
                "secrets_manager_per_10k_calls": SECRETS_MANAGER_PER_10K_CALLS,
                "cloudwatch_logs_per_gb": CLOUDWATCH_LOGS_PER_GB,
            },
        },
        note=note,
    )

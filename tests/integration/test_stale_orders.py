"""StaleOrdersFunction against moto's DynamoDB and SQS: counting, metrics, healing, and a flash sale."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from fanfare_sync.adapters.orders_table import ORDER_SK, OrdersTable, _marshal, unsynced_shard
from fanfare_sync.logic.detect_stale_orders import iso
from fanfare_sync.models.orders import AttemptEnd, AttemptRecord, CompletedAdmission, OrderKey
from fanfare_sync.models.queue_message import OrderEventKind, OrderMessage
from fanfare_sync_cli.local.moto_server import MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack
from tests.conftest import drain_queue

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SHOP = "fanfare-demo.myshopify.com"


def minutes_ago(minutes: float) -> str:
    return iso(NOW - timedelta(minutes=minutes))


def paid(order_id: str, received_at: str | None = None) -> OrderMessage:
    return OrderMessage.from_json(
        json.dumps(
            {
                "kind": "order.paid",
                "platform": "shopify",
                "shop": SHOP,
                "orderId": order_id,
                "topic": "orders/paid",
                "deliveryId": f"wh-{order_id}",
                "receivedAt": received_at or iso(NOW),
                "admissions": [
                    {"distributionId": "q1", "distributionType": "queue", "consumerId": f"c{order_id}"}
                ],
                "amount": "10.00",
                "currency": "USD",
                "itemCount": 1,
            }
        )
    )


@pytest.fixture
def orders(aws_stack: ProvisionedStack, moto_server: MotoServer) -> OrdersTable:
    return OrdersTable(aws_stack.ref("OrdersTable"), moto_server.client("dynamodb"))


@pytest.fixture
def monitor(load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("StaleOrdersFunction")


def run(monitor: ModuleType, now: datetime = NOW) -> dict[str, Any]:
    result: dict[str, Any] = monitor.monitor.run(now)
    return result


def attempted(
    orders: OrdersTable,
    order_id: str,
    received: str,
    at: str,
    end: AttemptEnd = AttemptEnd.RETRY,
    *,
    attempt: int = 1,
    reason: str = "HTTP 503",
    failed_index: int | None = None,
) -> None:
    """Record an attempt at the order the way the consumer does: read it, then write the outcome once."""
    message = paid(order_id, received)
    record = AttemptRecord(
        attempt=attempt, end=end, reason=reason, fanfare_calls=1, failed_index=failed_index
    )
    if end is AttemptEnd.SYNCED:
        record.completed.append(CompletedAdmission(0, {"statusCode": 200}))
    elif end is AttemptEnd.RETRY:
        record.retry_in_seconds = 600
    assert orders.record_attempt(message, orders.load(message), record, at)


def given_orders(orders: OrdersTable) -> None:
    """Orders of every age and state the monitor must tell apart (an order enters the unsynced index at its
    first failed attempt, dated from the webhook's receipt)."""
    # fresh: received 5 minutes ago, its first attempt failed: pending
    attempted(orders, "fresh", minutes_ago(5), minutes_ago(5))
    # received 45 minutes ago, retried 2 minutes ago: stale, its message is still in the queue
    attempted(orders, "retrying", minutes_ago(45), minutes_ago(45))
    attempted(orders, "retrying", minutes_ago(45), minutes_ago(2), attempt=5)
    # old, pending, nothing happened for 45 minutes: stale and its message is gone
    attempted(orders, "lost", minutes_ago(45), minutes_ago(45))
    # old and synced at the second attempt: never stale
    attempted(orders, "synced", minutes_ago(60), minutes_ago(60))
    attempted(orders, "synced", minutes_ago(60), minutes_ago(59), AttemptEnd.SYNCED, attempt=2)
    # failed 10 minutes ago, received 10 minutes ago: failed but recent, not stale yet
    attempted(
        orders,
        "failed-recent",
        minutes_ago(10),
        minutes_ago(10),
        AttemptEnd.FAILED,
        reason="HTTP 404",
        failed_index=0,
    )
    # failed an hour ago: stale; its message waits in the DLQ
    gave_up = "gave up after 6 attempts: HTTP 503"
    attempted(
        orders, "failed-old", minutes_ago(70), minutes_ago(60), AttemptEnd.FAILED, attempt=6, reason=gave_up
    )
    # failed 15 days ago: stale, and its DLQ message has expired (14 days)
    attempted(
        orders,
        "expired",
        minutes_ago(15 * 24 * 60 + 5),
        minutes_ago(15 * 24 * 60),
        AttemptEnd.FAILED,
        attempt=6,
        reason=gave_up,
    )
    # a cancelled order never paid: no sync state, never stale
    orders.record_lifecycle(
        replace(paid("cancelled"), kind=OrderEventKind.CANCELLED, topic="orders/cancelled"),
        minutes_ago(90),
    )


def test_counts_exactly_the_stale_orders_and_emits_the_metrics(
    orders: OrdersTable, monitor: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    given_orders(orders)
    result = run(monitor)
    assert result["staleOrders"] == 4  # retrying, lost, failed-old, expired
    assert result["oldestStaleOrderAgeSeconds"] == (15 * 24 * 60 + 5) * 60
    monitor.metrics.flush_metrics()
    [blob] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert blob["StaleOrders"] == [4.0]
    assert blob["OldestStaleOrderAgeSeconds"] == [float((15 * 24 * 60 + 5) * 60)]
    assert blob["service"] == "fanfare-sync"


def test_zero_is_emitted_when_nothing_is_stale(
    orders: OrdersTable, monitor: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    attempted(orders, "fresh", minutes_ago(1), minutes_ago(1))
    assert run(monitor) == {"staleOrders": 0, "oldestStaleOrderAgeSeconds": 0, "requeued": 0}
    monitor.metrics.flush_metrics()
    [blob] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert (blob["StaleOrders"], blob["OldestStaleOrderAgeSeconds"], blob["StaleOrdersRequeued"]) == (
        [0.0],
        [0.0],
        [0.0],
    )


def test_requeues_only_orders_whose_message_is_gone_at_most_once_an_hour(
    orders: OrdersTable, monitor: ModuleType, aws_stack: ProvisionedStack, moto_server: MotoServer
) -> None:
    given_orders(orders)
    sqs = moto_server.client("sqs")

    assert run(monitor)["requeued"] == 2
    requeued = drain_queue(sqs, aws_stack.ref("CompletionQueue"))
    assert sorted(m["orderId"] for m in requeued) == ["expired", "lost"]
    lost = next(m for m in requeued if m["orderId"] == "lost")
    assert lost["topic"] == "fanfare-sync/requeue"
    assert lost["admissions"] == [
        {"distributionId": "q1", "distributionType": "queue", "consumerId": "clost"}
    ]
    assert (lost["amount"], lost["currency"], lost["itemCount"]) == ("10.00", "USD", 1)
    _, history = orders.order_with_history(OrderKey("shopify", SHOP, "lost"))
    assert history[-1]["event"] == "order_requeued"
    assert "queue message is gone" in history[-1]["data"]["reason"]

    def requeued_at(minutes: float) -> list[str]:
        run(monitor, NOW + timedelta(minutes=minutes))
        return sorted(m["orderId"] for m in drain_queue(sqs, aws_stack.ref("CompletionQueue")))

    # Five minutes later nothing new is lost, and the two already requeued are not sent again.
    assert requeued_at(5) == []
    # At +59 min (no consumer runs in this test) "fresh" and "retrying" have been silent for over 30
    # minutes too, so they go; "lost" and "expired", requeued 59 minutes ago, do not go again yet.
    assert requeued_at(59) == ["fresh", "retrying"]
    # An hour after their first requeue, still not synced: one more attempt each.
    assert requeued_at(61) == ["expired", "lost"]


def test_a_requeued_order_is_completed_by_the_consumer(
    orders: OrdersTable,
    monitor: ModuleType,
    load_function: Callable[..., ModuleType],
    aws_stack: ProvisionedStack,
    moto_server: MotoServer,
) -> None:
    from fanfare_sync_cli.local.function_worker import Invocation
    from fanfare_sync_cli.local.lambda_context import LocalLambdaContext
    from fanfare_sync_cli.local.sqs_poller import SqsEventSource
    from fanfare_sync_cli.local.stack import DEFAULT_FANFARE_ORG_ID, DEFAULT_FANFARE_SECRET_KEY
    from fanfare_sync_cli.sandbox import FanfareSandbox

    attempted(orders, "lost", minutes_ago(45), minutes_ago(45))
    run(monitor)
    with FanfareSandbox(org_id=DEFAULT_FANFARE_ORG_ID, secret_key=DEFAULT_FANFARE_SECRET_KEY) as sandbox:
        consumer = load_function("CompleteAdmissionFunction", FANFARE_API_URL=sandbox.base_url)
        source = SqsEventSource(
            moto_server.client("sqs"),
            aws_stack.ref("CompletionQueue"),
            aws_stack.resources["CompletionQueue"].attributes["Arn"],
            "us-east-1",
            lambda event: Invocation(payload=consumer.lambda_handler(event, LocalLambdaContext())),
        )
        assert source.poll_once() == 1
        assert [c["consumer_id"] for c in sandbox.completions()] == ["clost"]
    order, _ = orders.order_with_history(OrderKey("shopify", SHOP, "lost"))
    assert order is not None
    assert order["syncStatus"] == "synced"
    assert run(monitor, NOW + timedelta(minutes=1))["staleOrders"] == 0


def test_flash_sale_of_ten_thousand_pending_orders_is_counted_with_paging(
    orders: OrdersTable, monitor: ModuleType, aws_stack: ProvisionedStack, moto_server: MotoServer
) -> None:
    # Given 10,000 pending orders written as a failed attempt writes them, spread over the index's shards
    ddb = moto_server.client("dynamodb")
    attempted(orders, "shape", minutes_ago(40), minutes_ago(40))
    [shape] = [
        item
        for item in ddb.scan(TableName=aws_stack.ref("OrdersTable"))["Items"]
        if item["sk"]["S"] == ORDER_SK
    ]
    assert "unsyncedShard" in shape
    items = []
    for number in range(10_000):
        key = OrderKey("shopify", SHOP, f"sale-{number}")
        item = dict(shape)
        item.update(
            _marshal(
                {
                    "pk": key.pk,
                    "orderId": key.order_id,
                    "unsyncedShard": unsynced_shard(key.pk),
                    # updated a minute ago: stale, but still being retried, so nothing is requeued
                    "unsyncedSince": minutes_ago(40 + number / 1000),
                    "updatedAt": minutes_ago(1),
                }
            )
        )
        items.append({"PutRequest": {"Item": item}})
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={aws_stack.ref("OrdersTable"): items[start : start + 25]})
    shards = {unsynced_shard(OrderKey("shopify", SHOP, f"sale-{n}").pk) for n in range(10_000)}
    assert len(shards) == 16
    # When the monitor runs
    result = run(monitor)
    # Then every one is counted (plus the shape order itself), across pages of all 16 shards
    assert result["staleOrders"] == 10_001
    assert result["requeued"] == 1  # only "shape", silent for 40 minutes
    assert result["oldestStaleOrderAgeSeconds"] == round((40 + 9999 / 1000) * 60)

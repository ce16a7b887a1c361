"""CompleteAdmissionFunction against moto's SQS and DynamoDB over HTTP and the Fanfare sandbox.

Messages travel through the real completion queue: they are received as Lambda's event source mapping
receives them, handed to the handler, and deleted according to its partial batch response. moto cannot
fast-forward time, so the retry schedule is compressed at our own adapter: the delay the consumer asks for
is recorded, and the real ChangeMessageVisibility call is made with 0 (one test keeps the real delay).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from fanfare_sync.adapters.orders_table import UNSYNCED_INDEX, OrdersTable
from fanfare_sync.models.orders import OrderKey
from fanfare_sync_cli.local.function_worker import Invocation
from fanfare_sync_cli.local.lambda_context import LocalLambdaContext
from fanfare_sync_cli.local.moto_server import MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack
from fanfare_sync_cli.local.sqs_poller import SqsEventSource, sqs_lambda_record
from fanfare_sync_cli.local.stack import DEFAULT_FANFARE_ORG_ID, DEFAULT_FANFARE_SECRET_KEY
from fanfare_sync_cli.sandbox import FanfareSandbox
from tests.conftest import drain_queue, queue_depth

ORDER_ID = "820982911946154508"
SHOP = "fanfare-demo.myshopify.com"
KEY = OrderKey("shopify", SHOP, ORDER_ID)


def paid_message(order_id: str = ORDER_ID, **overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "v": 1,
        "kind": "order.paid",
        "platform": "shopify",
        "shop": SHOP,
        "orderId": order_id,
        "topic": "orders/paid",
        "deliveryId": f"wh-{order_id}",
        "eventId": f"evt-{order_id}",
        "triggeredAt": "2026-11-27T15:00:05Z",
        "receivedAt": "2026-11-27T15:00:05.201Z",
        "admissions": [
            {"distributionId": "queue_01", "distributionType": "queue", "consumerId": f"cons_{order_id}"}
        ],
        "amount": "199.00",
        "currency": "USD",
        "itemCount": 2,
    }
    message.update(overrides)
    return message


@pytest.fixture(scope="module")
def sandbox() -> Iterator[FanfareSandbox]:
    with FanfareSandbox(org_id=DEFAULT_FANFARE_ORG_ID, secret_key=DEFAULT_FANFARE_SECRET_KEY) as running:
        yield running


@dataclass
class Harness:
    """One completion stack: the consumer module, its queue, DLQ and orders table, all on moto."""

    module: ModuleType
    sqs: Any
    queue_url: str
    dlq_url: str
    queue_arn: str
    orders: OrdersTable
    sandbox: FanfareSandbox
    delays: list[int]

    def send(self, message: dict[str, Any], copies: int = 1) -> None:
        for _ in range(copies):
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))

    def invoke(self, event: dict[str, Any]) -> Invocation:
        try:
            return Invocation(
                payload=self.module.lambda_handler(event, LocalLambdaContext(timeout_seconds=30))
            )
        except Exception as error:  # Lambda reports a raised error as a failed invocation
            return Invocation(error_type=type(error).__name__, error_message=str(error))

    def poll(self) -> int:
        """One receive → invoke → delete round, as the event source mapping does it."""
        source = SqsEventSource(
            self.sqs, self.queue_url, self.queue_arn, "us-east-1", self.invoke, batch_size=10
        )
        return source.poll_once()

    def make_due(self) -> None:
        """Skip the wait: every message that is waiting for its retry becomes visible now."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        for message in response.get("Messages", []):
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    def order(self, key: OrderKey = KEY) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return self.orders.order_with_history(key)

    def events(self, key: OrderKey = KEY) -> list[str]:
        return [event["event"] for event in self.order(key)[1]]

    def visible(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


@pytest.fixture
def harness(
    load_function: Callable[..., ModuleType],
    aws_stack: ProvisionedStack,
    moto_server: MotoServer,
    sandbox: FanfareSandbox,
    request: pytest.FixtureRequest,
) -> Harness:
    sandbox.reset()
    module = load_function("CompleteAdmissionFunction", FANFARE_API_URL=sandbox.base_url)
    delays: list[int] = []
    if "real_delays" not in request.keywords:
        queue = module.consumer._queue
        delay_for_real = queue.delay_redelivery

        def compressed(receipt_handle: str, seconds: int) -> None:
            delays.append(seconds)
            delay_for_real(receipt_handle, 0)

        queue.delay_redelivery = compressed
    return Harness(
        module=module,
        sqs=moto_server.client("sqs"),
        queue_url=aws_stack.ref("CompletionQueue"),
        dlq_url=aws_stack.ref("CompletionDLQ"),
        queue_arn=aws_stack.resources["CompletionQueue"].attributes["Arn"],
        orders=OrdersTable(aws_stack.ref("OrdersTable"), moto_server.client("dynamodb")),
        sandbox=sandbox,
        delays=delays,
    )


def sqs_event(harness: Harness, max_messages: int = 10) -> dict[str, Any]:
    response = harness.sqs.receive_message(
        QueueUrl=harness.queue_url,
        MaxNumberOfMessages=max_messages,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return {
        "Records": [
            sqs_lambda_record(m, harness.queue_arn, "us-east-1") for m in response.get("Messages", [])
        ]
    }


def test_paid_order_is_completed_once_with_the_guide_call(harness: Harness) -> None:
    # Given a paid order on the queue
    harness.send(paid_message())
    # When the consumer processes it
    assert harness.poll() == 1
    # Then Fanfare got exactly one call, on the queue endpoint, with the guide's headers and body
    [request] = harness.sandbox.requests()
    assert (request["method"], request["path"]) == ("POST", "/queues/queue_01/complete")
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["x-organization-id"] == DEFAULT_FANFARE_ORG_ID
    assert headers["x-secret-key"] == "[REDACTED]"  # sent (the sandbox accepted it), recorded redacted
    assert headers["content-type"] == "application/json"
    assert request["body"]["consumerId"] == f"cons_{ORDER_ID}"
    metadata = request["body"]["metadata"]
    assert {k: metadata[k] for k in ("orderId", "orderAmount", "platform", "itemCount", "currency")} == {
        "orderId": ORDER_ID,
        "orderAmount": "199.00",
        "platform": "shopify",
        "itemCount": 2,
        "currency": "USD",
    }
    assert metadata["completedAt"].endswith("Z")
    assert len(harness.sandbox.completions()) == 1
    # And the order is synced, out of the unsynced index, with its history
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "synced"
    assert order["status"] == "paid"
    assert "unsyncedShard" not in order
    [admission] = order["admissions"]
    assert admission["state"] == "completed"
    assert admission["completedAt"].endswith("Z")
    assert (admission["completion"]["statusCode"], admission["completion"]["attempt"]) == (200, 1)
    assert admission["completion"]["alreadyCompleted"] is False
    # Its receipt and its completion are on the order item; the history holds only what went wrong (nothing)
    assert order["receivedAt"].endswith("Z")
    assert harness.events() == []
    assert queue_depth(harness.sqs, harness.queue_url) == 0


def test_each_distribution_type_goes_to_its_endpoint(harness: Harness) -> None:
    admissions = [
        {"distributionId": "q1", "distributionType": "queue", "consumerId": "c1"},
        {"distributionId": "d1", "distributionType": "draw", "consumerId": "c1"},
        {"distributionId": "a1", "distributionType": "auction", "consumerId": "c1"},
        {"distributionId": "t1", "distributionType": "timed_release", "consumerId": "c1"},
    ]
    harness.send(paid_message(admissions=admissions))
    harness.poll()
    assert sorted(r["path"] for r in harness.sandbox.requests()) == [
        "/auctions/a1/complete",
        "/draws/d1/complete",
        "/queues/q1/complete",
        "/timed-releases/t1/complete",
    ]
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "synced"
    assert [a["completion"]["statusCode"] for a in order["admissions"]] == [200, 200, 200, 200]
    assert order["attempts"] == 1  # one delivery, one attempt, however many admissions it completed


def test_same_webhook_delivered_five_times_completes_once(harness: Harness) -> None:
    for _ in range(5):
        harness.send(paid_message())
        harness.poll()
    assert len(harness.sandbox.completions()) == 1
    assert len(harness.sandbox.requests()) == 1  # the order's sync state stops repeats before Fanfare
    order, history = harness.order()
    assert order is not None
    assert order["admissions"][0]["completion"]["attempt"] == 1  # written by the first delivery only
    assert history == []
    assert queue_depth(harness.sqs, harness.queue_url) == 0


def test_five_concurrent_copies_in_one_batch_call_fanfare_once(harness: Harness) -> None:
    # Given five copies of the order in one batch, and a Fanfare slow enough for them to overlap
    harness.sandbox.set_faults(latency_ms=300)
    harness.send(paid_message(), copies=5)
    # When one batch carries all five (processed concurrently), then the copies that lost the race retry
    event = sqs_event(harness)
    assert len(event["Records"]) == 5
    first = harness.invoke(event)
    assert not first.failed
    failed = {f["itemIdentifier"] for f in first.payload["batchItemFailures"]}
    assert len(failed) == 4  # in progress elsewhere: retried, not dropped
    for record in event["Records"]:
        if record["messageId"] not in failed:
            harness.sqs.delete_message(QueueUrl=harness.queue_url, ReceiptHandle=record["receiptHandle"])
    while harness.poll():
        pass
    # Then Fanfare was called once, and every copy is gone from the queue
    assert len(harness.sandbox.requests()) == 1
    assert len(harness.sandbox.completions()) == 1
    assert queue_depth(harness.sqs, harness.queue_url) == 0
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "synced"


@pytest.mark.real_delays
def test_transient_500_completes_after_the_first_retry(harness: Harness) -> None:
    harness.sandbox.set_faults(rules=[{"status": 500, "times": 1}])
    harness.send(paid_message())

    harness.poll()
    order, history = harness.order()
    assert order is not None
    assert (order["syncStatus"], int(order["attempts"])) == ("pending", 1)
    retry = next(e for e in history if e["event"] == "fanfare_retry_scheduled")
    assert (retry["data"]["retryInSeconds"], retry["data"]["attempt"]) == (1, 1)
    assert harness.visible() == 0  # hidden for its real 1 s backoff (ChangeMessageVisibility)

    # The event source mapping keeps polling; the message comes back once its second has passed.
    deadline = time.monotonic() + 10
    while not harness.poll() and time.monotonic() < deadline:
        pass
    order, _ = harness.order()
    assert order is not None
    assert (order["syncStatus"], int(order["attempts"])) == ("synced", 2)
    assert len(harness.sandbox.completions()) == 1
    assert harness.events() == ["fanfare_retry_scheduled"]
    assert order["admissions"][0]["completion"]["attempt"] == 2


def test_a_retry_is_counted_as_a_retry_not_as_a_synced_order(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.sandbox.set_faults(rules=[{"status": 503, "times": 1}])
    harness.send(paid_message())
    capsys.readouterr()
    harness.poll()
    [blob] = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"_aws"' in line and "CompletionRetries" in line
    ]
    assert blob["CompletionRetries"] == [1.0]
    assert "OrdersSynced" not in blob
    assert "Completions" not in blob


def test_429_retry_after_sets_the_next_attempt(harness: Harness) -> None:
    harness.sandbox.set_faults(rules=[{"status": 429, "retry_after": 45, "times": 1}])
    harness.send(paid_message())
    harness.poll()
    _, history = harness.order()
    retry = next(e for e in history if e["event"] == "fanfare_retry_scheduled")
    # The schedule says 1 s after a first failure; Fanfare asked for 45 s, and asking sooner would be refused.
    assert retry["data"]["retryInSeconds"] == 45
    assert harness.delays == [45]
    harness.poll()
    assert len(harness.sandbox.completions()) == 1


def test_permanent_404_goes_to_the_dlq_at_once_with_the_reason(harness: Harness) -> None:
    harness.sandbox.set_faults(rules=[{"distribution_id": "queue_01", "status": 404}])
    harness.send(paid_message())
    harness.poll()

    assert queue_depth(harness.sqs, harness.queue_url) == 0
    [parked] = harness.sqs.receive_message(
        QueueUrl=harness.dlq_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert json.loads(parked["Body"])["orderId"] == ORDER_ID
    assert parked["MessageAttributes"]["failureReason"]["StringValue"].startswith("HTTP 404")
    order, history = harness.order()
    assert order is not None
    assert order["syncStatus"] == "failed"
    assert order["lastError"].startswith("HTTP 404")
    assert order["admissions"][0]["state"] == "failed"
    assert "unsyncedShard" in order  # still unsynced: the stale-order monitor sees it
    assert history[-1]["event"] == "fanfare_sync_failed"
    assert len(harness.sandbox.requests()) == 1


def test_unknown_distribution_type_is_rejected_before_any_call(harness: Harness) -> None:
    admissions = [{"distributionId": "x1", "distributionType": "raffle", "consumerId": "c1"}]
    harness.send(paid_message(admissions=admissions))
    harness.poll()
    assert harness.sandbox.requests() == []
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "failed"
    assert "unknown Fanfare distribution type 'raffle'" in order["lastError"]
    assert len(drain_queue(harness.sqs, harness.dlq_url)) == 1


def test_a_message_failing_six_times_lands_in_the_dlq(harness: Harness) -> None:
    harness.sandbox.set_faults(error_rate=1.0)
    harness.send(paid_message())
    delays = []
    for attempt in range(1, 7):
        assert harness.poll() == 1, attempt
        _, history = harness.order()
        if attempt < 6:
            delays.append(history[-1]["data"]["retryInSeconds"])
    assert delays == [1, 5, 30, 120, 600]
    assert harness.delays == delays  # each one set on the message with ChangeMessageVisibility
    assert queue_depth(harness.sqs, harness.queue_url) == 0
    [parked] = drain_queue(harness.sqs, harness.dlq_url)
    assert parked["orderId"] == ORDER_ID
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "failed"
    assert order["lastError"].startswith("gave up after 6 attempts")
    assert len(harness.sandbox.requests()) == 6
    assert harness.sandbox.completions() == []


def test_crash_after_the_fanfare_call_does_not_complete_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a consumer that dies right after Fanfare completed the admission (before recording it)
    orders = harness.module.consumer._handler.orders

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("container killed")

    monkeypatch.setattr(orders, "record_attempt", crash)
    harness.send(paid_message())
    event = sqs_event(harness)
    harness.invoke(event)  # a killed container deletes nothing
    assert len(harness.sandbox.completions()) == 1
    assert queue_depth(harness.sqs, harness.queue_url) == 1
    # When its lease ends and the message is redelivered to a healthy consumer
    monkeypatch.undo()
    harness.sqs.change_message_visibility(
        QueueUrl=harness.queue_url, ReceiptHandle=event["Records"][0]["receiptHandle"], VisibilityTimeout=0
    )
    harness.poll()
    # Then the stored completion is reused: Fanfare is not called again, and the order is synced
    assert len(harness.sandbox.requests()) == 1
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "synced"
    assert order["admissions"][0]["completion"]["statusCode"] == 200  # the stored answer, reused
    assert queue_depth(harness.sqs, harness.queue_url) == 0


def test_already_completed_at_fanfare_counts_as_success(harness: Harness) -> None:
    # Fanfare completed it once already (another system, or an expired idempotency record)
    harness.sandbox.set_faults(rules=[{"status": 409, "body": {"message": "Admission already completed"}}])
    harness.send(paid_message())
    harness.poll()
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "synced"
    completion = order["admissions"][0]["completion"]
    assert (completion["statusCode"], completion["alreadyCompleted"]) == (409, True)


def test_cancellation_and_refund_are_recorded_and_never_restore_an_admission(harness: Harness) -> None:
    harness.send(paid_message())
    harness.poll()
    harness.send(paid_message(kind="order.cancelled", topic="orders/cancelled"))
    harness.send(paid_message(kind="order.refunded", topic="refunds/create", admissions=[], amount="50.00"))
    while harness.poll():
        pass
    order, history = harness.order()
    assert order is not None
    assert order["status"] == "cancelled"
    assert order["syncStatus"] == "synced"
    assert order["admissions"][0]["state"] == "completed"
    assert [e["event"] for e in history][-2:] in (
        ["order_cancelled", "order_refunded"],
        ["order_refunded", "order_cancelled"],
    )
    refund = next(e for e in history if e["event"] == "order_refunded")
    assert refund["data"]["amount"] == "50.00"
    assert len(harness.sandbox.requests()) == 1


def test_refund_of_an_order_we_never_saw_is_not_recorded(harness: Harness) -> None:
    harness.send(paid_message(order_id="999", kind="order.refunded", topic="refunds/create", admissions=[]))
    harness.poll()
    assert harness.order(OrderKey("shopify", SHOP, "999")) == (None, [])
    assert queue_depth(harness.sqs, harness.queue_url) == 0


def test_pending_orders_sit_in_the_sparse_unsynced_index(harness: Harness, moto_server: MotoServer) -> None:
    harness.sandbox.set_faults(error_rate=1.0)
    harness.send(paid_message(order_id="1"))
    harness.send(paid_message(order_id="2"))
    harness.poll()
    ddb = moto_server.client("dynamodb")
    table = harness.orders._table
    found = []
    for shard in range(16):
        page = ddb.query(
            TableName=table,
            IndexName=UNSYNCED_INDEX,
            KeyConditionExpression="unsyncedShard = :s",
            ExpressionAttributeValues={":s": {"S": f"{shard:02d}"}},
        )
        found += [item["orderId"]["S"] for item in page["Items"]]
    assert sorted(found) == ["1", "2"]


def test_invalid_queue_message_is_parked_in_the_dlq(harness: Harness) -> None:
    harness.sqs.send_message(QueueUrl=harness.queue_url, MessageBody='{"v": 1, "kind": "order.exploded"}')
    harness.poll()
    assert queue_depth(harness.sqs, harness.queue_url) == 0
    [parked] = harness.sqs.receive_message(QueueUrl=harness.dlq_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert parked["MessageAttributes"]["failureReason"]["StringValue"].startswith("invalid queue message")


def test_wrong_fanfare_credentials_retry_and_are_flagged(
    harness: Harness, moto_server: MotoServer, aws_stack: ProvisionedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    moto_server.client("secretsmanager").put_secret_value(
        SecretId=aws_stack.ref("FanfareCredentialsSecret"),
        SecretString=json.dumps({"orgId": "org_local", "secretKey": "sk_test_wrong"}),
    )
    harness.send(paid_message())
    harness.poll()
    order, _ = harness.order()
    assert order is not None
    assert order["syncStatus"] == "pending"
    assert "401" in order["lastError"]
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(blob.get("FanfareAuthFailures") == [1.0] for blob in metrics)
    assert "sk_test_wrong" not in json.dumps(order, default=str)


def test_fanfare_secret_never_appears_in_logs_records_or_queues(
    harness: Harness,
    moto_server: MotoServer,
    aws_stack: ProvisionedStack,
    captured_logs: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    canary = "sk_live_CANARY_7f3a9c"
    moto_server.client("secretsmanager").put_secret_value(
        SecretId=aws_stack.ref("FanfareCredentialsSecret"),
        SecretString=json.dumps({"orgId": "org_local", "secretKey": canary}),
    )
    harness.sandbox.set_faults(rules=[{"status": 500, "times": 1}, {"distribution_id": "bad", "status": 400}])
    harness.send(paid_message(order_id="1"))
    harness.send(
        paid_message(
            order_id="2",
            admissions=[{"distributionId": "bad", "distributionType": "draw", "consumerId": "c2"}],
        )
    )
    while harness.poll():
        pass
    everything = [captured_logs(), capsys.readouterr().out]
    for key in (OrderKey("shopify", SHOP, "1"), OrderKey("shopify", SHOP, "2")):
        everything.append(json.dumps(harness.order(key), default=str))
    everything += [json.dumps(m) for m in drain_queue(harness.sqs, harness.dlq_url)]
    everything.append(json.dumps(harness.sandbox.requests()))
    assert "order event processed" in everything[0]  # the log capture works
    assert canary not in "".join(everything)


def test_paid_message_without_admissions_goes_to_the_dlq_not_pending_for_ever(harness: Harness) -> None:
    harness.send(paid_message(admissions=[]))
    harness.poll()
    assert harness.order() == (None, [])
    [parked] = harness.sqs.receive_message(QueueUrl=harness.dlq_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert parked["MessageAttributes"]["failureReason"]["StringValue"] == "paid order without admissions"
    assert harness.sandbox.requests() == []


def test_a_redriven_failed_order_records_the_resumption_and_keeps_counting_attempts(harness: Harness) -> None:
    # Given an order that failed permanently and sits in the DLQ
    harness.sandbox.set_faults(rules=[{"distribution_id": "queue_01", "status": 404}])
    harness.send(paid_message())
    harness.poll()
    # When the cause is fixed and an operator moves the message back
    harness.sandbox.clear_faults()
    [parked] = harness.sqs.receive_message(QueueUrl=harness.dlq_url)["Messages"]
    harness.sqs.send_message(QueueUrl=harness.queue_url, MessageBody=parked["Body"])
    harness.poll()
    # Then the order completes, and its history tells the whole story
    order, history = harness.order()
    assert order is not None
    assert (order["syncStatus"], int(order["attempts"])) == ("synced", 2)
    assert [e["event"] for e in history] == [
        "fanfare_sync_failed",
        "fanfare_sync_resumed",
    ]
    assert history[1]["data"]["previousError"].startswith("HTTP 404")

"""An in-process fanfare-sync stack for reliability scenarios: real handlers, moto over HTTP, the sandbox.

Webhooks go through the real ingest handler, messages through moto's real completion queue and DLQ, and
batches through the real consumer handler, received and deleted as Lambda's event source mapping does.
Time is compressed where waiting would only slow the suite: the delay the consumer asks for is recorded
and the message is made visible at once; a record that failed without setting a delay (a crash) is made
visible at once instead of after the queue's 180 s visibility timeout; and the Fanfare client's read
timeout is 1 s instead of 5 s, so a "timeout" fault costs a second.

Every secret is a canary; `leaks()` searches everything the scenario produced for them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fanfare_sync.adapters.fanfare_api import FanfareTimeouts
from fanfare_sync.adapters.orders_table import OrdersTable
from fanfare_sync.models.orders import OrderKey
from fanfare_sync_cli.local.function_worker import Invocation
from fanfare_sync_cli.local.gateway import build_http_api_event
from fanfare_sync_cli.local.lambda_context import LocalLambdaContext
from fanfare_sync_cli.local.provision import ProvisionedStack
from fanfare_sync_cli.local.sqs_poller import records_to_delete, sqs_lambda_record
from fanfare_sync_cli.samples import SampleAdmission, SampleOrder, shopify_headers, shopify_order, to_body
from fanfare_sync_cli.sandbox import FanfareSandbox

CANARY_SHOPIFY_SECRET = "canary-shopify-7d1f0e9a"
CANARY_WC_SECRET = "canary-woocommerce-52be11c3"
CANARY_FANFARE_ORG = "org_canary"
CANARY_FANFARE_KEY = "sk_live_canary_9a8b7c6d"
CANARIES = (CANARY_SHOPIFY_SECRET, CANARY_WC_SECRET, CANARY_FANFARE_KEY)
SHOP = "fanfare-demo.myshopify.com"


def canary_secret_values() -> dict[str, str]:
    return {
        "ShopifyWebhookSecret": CANARY_SHOPIFY_SECRET,
        "WooCommerceWebhookSecret": CANARY_WC_SECRET,
        "FanfareCredentialsSecret": json.dumps(
            {"orgId": CANARY_FANFARE_ORG, "secretKey": CANARY_FANFARE_KEY}
        ),
    }


def order(number: int) -> SampleOrder:
    """Order `number`, with an admission of its own (the same admission is rightly completed only once)."""
    return SampleOrder(
        order_id=number, admissions=(SampleAdmission(f"queue_{number}", "queue", f"cons_{number}"),)
    )


def paid_webhook(
    number: int, secret: str = CANARY_SHOPIFY_SECRET, webhook_id: str | None = None
) -> dict[str, Any]:
    body = to_body(shopify_order(order(number)))
    headers = shopify_headers("orders/paid", body, secret, webhook_id=webhook_id or f"wh-{number}")
    return build_http_api_event("POST", "/webhooks/shopify", "", headers, body, "203.0.113.7")


@dataclass
class Stack:
    ingest: ModuleType
    consumer: ModuleType
    sqs: Any
    dynamodb: Any
    resources: ProvisionedStack
    sandbox: FanfareSandbox
    delays: list[int] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    dlq_seen: list[str] = field(default_factory=list)
    redriven: int = 0

    @property
    def queue_url(self) -> str:
        return self.resources.ref("CompletionQueue")

    @property
    def dlq_url(self) -> str:
        return self.resources.ref("CompletionDLQ")

    @property
    def orders(self) -> OrdersTable:
        return OrdersTable(self.resources.ref("OrdersTable"), self.dynamodb)

    def deliver(self, event: dict[str, Any]) -> int:
        """The platform delivers a webhook; returns the HTTP status it got back."""
        response = self.ingest.lambda_handler(
            event, LocalLambdaContext(function_name="ShopifyWebhookFunction")
        )
        self.responses.append(response)
        return int(response["statusCode"])

    def invoke(self, event: dict[str, Any]) -> Invocation:
        try:
            context = LocalLambdaContext(function_name="CompleteAdmissionFunction", timeout_seconds=30)
            return Invocation(payload=self.consumer.lambda_handler(event, context))
        except Exception as error:  # a raised error is a failed invocation for Lambda
            return Invocation(error_type=type(error).__name__, error_message=str(error))
        except SystemExit as exit_:  # the container died mid-batch: nothing is deleted, all comes back
            return Invocation(error_type="Runtime.ExitError", error_message=str(exit_))

    def poll(self) -> int:
        """One event-source-mapping round; returns the number of records handed to the consumer."""
        received = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        arn = self.resources.resources["CompletionQueue"].attributes["Arn"]
        records = [sqs_lambda_record(m, arn, "us-east-1") for m in received]
        invocation = self.invoke({"Records": records})
        done = set(records_to_delete(records, invocation, partial_failures=True))
        deletes = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(done)]
        # Compressed time: whatever delay a failed record was given has passed.
        retries = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 0}
            for i, r in enumerate(records)
            if r["receiptHandle"] not in done
        ]
        if deletes:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=deletes)
        if retries:
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=retries)
        return len(records)

    def drain(self, max_rounds: int = 10_000, max_redrives: int = 3) -> None:
        """Poll until the queue is empty; then, like an operator, redrive the DLQ (a few times) and go on.

        A scenario whose messages keep landing in the DLQ fails here with their reasons, instead of looping.
        """
        redrives = 0
        for _ in range(max_rounds):
            if self.poll():
                continue
            if self._dlq_depth():
                redrives += 1
                if redrives > max_redrives:
                    raise AssertionError(f"messages keep landing in the DLQ: {self._dlq_reasons()}")
                self._redrive_dlq()
                continue
            if self._depth() == 0:
                return
        raise AssertionError("the completion queue never drained")

    def _dlq_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def _dlq_reasons(self) -> Counter[str]:
        messages = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        return Counter(
            m.get("MessageAttributes", {}).get("failureReason", {}).get("StringValue", "redrive policy")
            for m in messages
        )

    def _depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def _redrive_dlq(self) -> int:
        moved = 0
        while messages := self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                self.dlq_seen.append(message["Body"])
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message["Body"])
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
        self.redriven += moved
        return moved

    # ------------------------------------------------------------------ what happened
    def completions_per_admission(self) -> Counter[tuple[str, str]]:
        return Counter((c["distribution_id"], c["consumer_id"]) for c in self.sandbox.completions())

    def synced(self, numbers: range | list[int]) -> list[int]:
        done = []
        for number in numbers:
            item, _ = self.orders.order_with_history(OrderKey("shopify", SHOP, str(number)))
            if item is not None and item.get("syncStatus") == "synced":
                done.append(number)
        return done

    def leaks(self, captured_output: str) -> list[str]:
        """Every canary found in logs/metrics, HTTP responses, queue and DLQ messages, order records."""
        haystacks = [captured_output, json.dumps(self.responses), *self.dlq_seen]
        scan = self.dynamodb.scan(TableName=self.resources.ref("OrdersTable"))
        haystacks.append(json.dumps(scan["Items"]))
        for url in (self.queue_url, self.dlq_url):
            peek = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            haystacks += [m["Body"] for m in peek.get("Messages", [])]
        recorded = json.dumps(self.sandbox.requests())
        haystacks.append(recorded)
        return [canary for canary in CANARIES if any(canary in text for text in haystacks)]


def build_stack(
    load_function: Callable[..., ModuleType],
    aws_stack: ProvisionedStack,
    moto_server: Any,
    sandbox: FanfareSandbox,
) -> Stack:
    ingest = load_function("ShopifyWebhookFunction")
    consumer = load_function("CompleteAdmissionFunction", FANFARE_API_URL=sandbox.base_url)
    stack = Stack(
        ingest=ingest,
        consumer=consumer,
        sqs=moto_server.client("sqs"),
        dynamodb=moto_server.client("dynamodb"),
        resources=aws_stack,
        sandbox=sandbox,
    )
    consumer.consumer._fanfare.timeouts = FanfareTimeouts(read=1.0)
    queue = consumer.consumer._queue
    delay_for_real = queue.delay_redelivery

    def compressed(receipt_handle: str, seconds: int) -> None:
        stack.delays.append(seconds)
        delay_for_real(receipt_handle, 0)

    queue.delay_redelivery = compressed
    return stack

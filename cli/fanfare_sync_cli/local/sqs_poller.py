"""The local stand-in for Lambda's SQS event source mapping (moto's never polls).

It receives batches with the template's batch size, invokes the function, and deletes only the records
the function did not report in `batchItemFailures`; a failed invocation deletes nothing. What is not
deleted comes back after its visibility timeout, and moto's redrive policy moves it to the DLQ after
`maxReceiveCount` receives: the same retry behaviour as on AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fanfare_sync_cli.local.function_worker import Invocation

# Short long-polls keep stop() prompt; moto answers as soon as a message is there.
WAIT_SECONDS = 1


def sqs_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, as Lambda builds it from a ReceiveMessage result."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "0"),
            "SenderId": attributes.get("SenderId", "AIDALOCAL"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def records_to_delete(
    records: list[dict[str, Any]], invocation: Invocation, partial_failures: bool
) -> list[str]:
    """Receipt handles of the records that succeeded, by Lambda's rules for partial batch responses."""
    if invocation.failed:
        return []
    if not partial_failures:
        return [r["receiptHandle"] for r in records]
    payload = invocation.payload if isinstance(invocation.payload, dict) else {}
    failures = payload.get("batchItemFailures") or []
    ids = {r["messageId"] for r in records}
    failed_ids = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
    if not failed_ids <= ids:
        # An unknown or empty identifier fails the whole batch, as Lambda does.
        return []
    return [r["receiptHandle"] for r in records if r["messageId"] not in failed_ids]


class SqsEventSource:
    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Callable[[dict[str, Any]], Invocation],
        *,
        batch_size: int = 10,
        partial_failures: bool = True,
        concurrency: int = 1,
        name: str = "sqs-poller",
    ) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._invoke = invoke
        self._batch_size = batch_size
        self._partial_failures = partial_failures
        self._concurrency = concurrency
        self.name = name
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0

    def start(self) -> SqsEventSource:
        for number in range(self._concurrency):
            thread = threading.Thread(target=self._run, name=f"{self.name}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns how many records it carried."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        records = [sqs_lambda_record(m, self._queue_arn, self._region) for m in messages]
        invocation = self._invoke({"Records": records})
        self.batches += 1
        handles = records_to_delete(records, invocation, self._partial_failures)
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start : start + 10])]
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
        if invocation.failed:
            print(
                f"[{self.name}] invocation failed: {invocation.error_type}: {invocation.error_message}",
                flush=True,
            )
        return len(records)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception as error:  # moto restarting, a transient error: keep polling, like the ESM
                print(f"[{self.name}] poll failed: {type(error).__name__}: {error}", flush=True)
                self._stopping.wait(1)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=WAIT_SECONDS + 5)
        self._threads.clear()

"""SQS adapter for the consumer's own queue controls: retry delays and parking messages in the DLQ."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fanfare_sync.errors import QueueUnavailableError


class CompletionQueueControls:
    def __init__(self, queue_url: str, dlq_url: str, sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._sqs = sqs_client

    def delay_redelivery(self, receipt_handle: str, seconds: int) -> None:
        """The message becomes visible again after `seconds` (its next attempt)."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (BotoCoreError, ClientError) as error:
            # The queue's own visibility timeout still brings the message back; only the delay is lost.
            raise QueueUnavailableError(type(error).__name__) from error

    def park_in_dlq(self, body: str, reason: str, attempt: int) -> None:
        """Move a message that can never succeed to the DLQ now, instead of retrying it six times."""
        try:
            self._sqs.send_message(
                QueueUrl=self._dlq_url,
                MessageBody=body,
                MessageAttributes={
                    "failureReason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
                    "attempts": {"DataType": "Number", "StringValue": str(attempt)},
                },
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailableError(type(error).__name__) from error

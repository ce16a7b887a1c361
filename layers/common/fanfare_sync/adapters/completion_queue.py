"""SQS adapter for the consumer's own queue controls: retry delays and parking messages in the DLQ."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fanfare_sync.errors import QueueUnavailableError


class CompletionQueueControls:
    """`sqs_client` makes the SQS client, once, on first use: a batch that completes never needs it, so a
    cold start does not pay for building it."""

    def __init__(self, queue_url: str, dlq_url: str, sqs_client: Callable[[], Any]) -> None:
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._make_client = sqs_client
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def _sqs(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:  # records of a batch run on several threads: one client for all of them
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

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

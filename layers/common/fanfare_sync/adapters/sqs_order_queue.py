"""SQS adapter: put order events on the completion queue."""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fanfare_sync.errors import QueueUnavailableError
from fanfare_sync.models.queue_message import OrderMessage

# Shopify gives a webhook 5 s in all; a stuck SQS call must fail in time for us to answer 503 ourselves.
SQS_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 3},
)


class SqsOrderQueue:
    def __init__(self, queue_url: str, sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._sqs = sqs_client

    def send(self, message: OrderMessage) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=message.to_json(),
                MessageAttributes={
                    "kind": {"DataType": "String", "StringValue": message.kind.value},
                    "platform": {"DataType": "String", "StringValue": message.platform.value},
                },
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailableError(type(error).__name__) from error

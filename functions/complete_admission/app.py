"""SQS consumer: complete each order's Fanfare admissions once; report partial batch failures."""

import asyncio
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from fanfare_sync.completion_consumer import CompletionConsumer

logger = Logger()
metrics = Metrics()
# A batch whose records all failed (Fanfare down) is a retry, not a crash: report the failures instead of
# raising, so the consumer's error alarm keeps meaning "bug".
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
consumer = CompletionConsumer.from_environment(logger, metrics)


async def record_handler(record: SQSRecord) -> None:
    # Blocking I/O (DynamoDB, Fanfare) on the consumer's thread pool: the batch's records run side by side.
    await asyncio.get_running_loop().run_in_executor(consumer.executor, consumer.process_record, record)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    consumer.completer.config.register_lambda_context(context)
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

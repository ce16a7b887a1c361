"""SQS consumer: complete each order's Fanfare admissions once; report partial batch failures."""

import gc

# Init allocates a few hundred thousand objects that live as long as the container (modules, clients,
# models); the cyclic garbage collector would walk them again and again while they are being made. It is
# off until init ends, and what init made is then frozen out of its reach (~30 ms of each cold start).
gc.disable()

from typing import Any  # noqa: E402 - after the collector is off, on purpose

from aws_lambda_powertools import Logger, Metrics  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from fanfare_sync.completion_consumer import BatchItemFailures, CompletionConsumer  # noqa: E402

try:
    logger = Logger()
    metrics = Metrics()
    consumer = CompletionConsumer.from_environment(logger, metrics)
finally:
    gc.freeze()
    gc.enable()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> BatchItemFailures:
    consumer.completer.config.register_lambda_context(context)
    # The batch's records run side by side on the consumer's thread pool; the failed ones are reported
    # (ReportBatchItemFailures) and SQS redelivers only those.
    return consumer.process_batch(event)

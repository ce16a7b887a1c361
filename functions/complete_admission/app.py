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
    # One line per record at flash-sale volume: the code location and the function's name, ARN and memory
    # (the log group already says which function) would be ~200 of its ~550 bytes, every time.
    logger = Logger(location=None)
    metrics = Metrics()
    consumer = CompletionConsumer.from_environment(logger, metrics)
finally:
    gc.freeze()
    gc.enable()


@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> BatchItemFailures:
    # The request id ties each record's line to its invocation (and to Lambda's own error lines).
    logger.append_keys(function_request_id=context.aws_request_id)
    consumer.completer.config.register_lambda_context(context)
    # The batch's records run side by side on the consumer's thread pool; the failed ones are reported
    # (ReportBatchItemFailures) and SQS redelivers only those.
    return consumer.process_batch(event)

"""Scheduled: count orders that stay unsynced (alarm metrics) and re-enqueue those whose message is gone."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from fanfare_sync.stale_monitor import StaleOrdersMonitor

logger = Logger()
metrics = Metrics()
monitor = StaleOrdersMonitor.from_environment(logger, metrics)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return monitor.run()

"""The body of StaleOrdersFunction: count stale orders, emit the alarm metrics, heal what can be healed."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from fanfare_sync.adapters.orders_table import OrdersTable
from fanfare_sync.adapters.sqs_order_queue import SQS_CLIENT_CONFIG, SqsOrderQueue
from fanfare_sync.config import ConfigurationError, required_env
from fanfare_sync.logic.detect_stale_orders import StaleScan, scan_and_heal
from fanfare_sync.logic.retry_schedule import RETRY_DELAYS_SECONDS

# Longest silence a pending order can show while its message still waits in the queue: the whole retry
# schedule plus the queue's visibility timeout, doubled for margin (about 31 minutes).
DEFAULT_MESSAGE_SILENCE_SECONDS = 2 * (sum(RETRY_DELAYS_SECONDS) + 180)
# Stale orders named one by one in the log; the rest are counted.
LOGGED_ORDERS = 25


def _positive_number(name: str, default: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None and default is not None:
        return default
    try:
        value = float(required_env(name))
    except ValueError:
        raise ConfigurationError(f"environment variable {name} must be a number") from None
    if value <= 0:
        raise ConfigurationError(f"environment variable {name} must be positive")
    return value


class StaleOrdersMonitor:
    def __init__(
        self,
        orders: OrdersTable,
        queue: SqsOrderQueue,
        logger: Logger,
        metrics: Metrics,
        *,
        stale_after_seconds: float,
        message_silence_seconds: float,
        dlq_retention_seconds: float,
    ) -> None:
        self._orders = orders
        self._queue = queue
        self._logger = logger
        self._metrics = metrics
        self.stale_after_seconds = stale_after_seconds
        self.message_silence_seconds = message_silence_seconds
        self.dlq_retention_seconds = dlq_retention_seconds

    @classmethod
    def from_environment(cls, logger: Logger, metrics: Metrics) -> StaleOrdersMonitor:
        return cls(
            OrdersTable(required_env("ORDERS_TABLE"), boto3.client("dynamodb")),
            SqsOrderQueue(
                required_env("COMPLETION_QUEUE_URL"), boto3.client("sqs", config=SQS_CLIENT_CONFIG)
            ),
            logger,
            metrics,
            # Minutes in the template; a fraction is accepted (the local runtime uses one for short demos).
            stale_after_seconds=60 * _positive_number("STALE_AFTER_MINUTES"),
            message_silence_seconds=_positive_number(
                "MESSAGE_SILENCE_SECONDS", DEFAULT_MESSAGE_SILENCE_SECONDS
            ),
            dlq_retention_seconds=_positive_number("DLQ_RETENTION_SECONDS"),
        )

    def run(self, now: datetime | None = None) -> dict[str, Any]:
        scan = scan_and_heal(
            self._orders,
            self._queue,
            now or datetime.now(UTC),
            stale_after_seconds=self.stale_after_seconds,
            message_silence_seconds=self.message_silence_seconds,
            dlq_retention_seconds=self.dlq_retention_seconds,
        )
        self._emit(scan)
        return {
            "staleOrders": len(scan.stale),
            "oldestStaleOrderAgeSeconds": round(scan.oldest_age_seconds),
            "requeued": len(scan.requeued),
        }

    def _emit(self, scan: StaleScan) -> None:
        # Always emitted, zero included: the alarm on StaleOrders and the one on the monitor falling silent
        # both need a datapoint from every run.
        self._metrics.add_metric(name="StaleOrders", unit=MetricUnit.Count, value=len(scan.stale))
        self._metrics.add_metric(
            name="OldestStaleOrderAgeSeconds", unit=MetricUnit.Seconds, value=round(scan.oldest_age_seconds)
        )
        self._metrics.add_metric(name="StaleOrdersRequeued", unit=MetricUnit.Count, value=len(scan.requeued))
        for order in scan.stale[:LOGGED_ORDERS]:
            self._logger.warning(
                "stale order",
                extra={
                    "order_id": order.key.order_id,
                    "platform": order.key.platform,
                    "shop": order.key.shop,
                    "sync_status": order.sync_status,
                    "unsynced_for_seconds": round(order.age_seconds),
                    "attempts": order.attempts,
                    "last_error": order.last_error,
                    "requeued": order.key in scan.requeued,
                },
            )
        self._logger.info(
            "stale-order scan",
            extra={
                "stale_orders": len(scan.stale),
                "oldest_stale_order_age_seconds": round(scan.oldest_age_seconds),
                "requeued": len(scan.requeued),
                "stale_after_seconds": self.stale_after_seconds,
            },
        )

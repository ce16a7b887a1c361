"""The body of CompleteAdmissionFunction: SQS records in, completions out, partial batch failures back.

Records of a batch run concurrently on a thread pool (the Fanfare call is I/O-bound), so a batch of 10 takes
about one Fanfare round trip rather than ten.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
from boto3.session import Session
from botocore.config import Config

from fanfare_sync.adapters.completion_queue import CompletionQueueControls
from fanfare_sync.adapters.fanfare_api import AuthStyle, FanfareClient, FanfareCredentials, FanfareTimeouts
from fanfare_sync.adapters.fanfare_credentials import SecretsManagerFanfareCredentials
from fanfare_sync.adapters.orders_table import OrdersTable
from fanfare_sync.adapters.sqs_order_queue import SQS_CLIENT_CONFIG
from fanfare_sync.config import ConfigurationError, required_env
from fanfare_sync.errors import DependencyUnavailableError
from fanfare_sync.logic.complete_admission import AdmissionCompleter, idempotency_config
from fanfare_sync.logic.complete_order_event import (
    OrderEventHandler,
    RecordReport,
    RecordResult,
    RetryLaterError,
)
from fanfare_sync.logic.retry_schedule import retry_delay_seconds
from fanfare_sync.models.fanfare import CompletionOutcome, CompletionResult
from fanfare_sync.models.queue_message import InvalidQueueMessageError, OrderMessage

BATCH_CONCURRENCY = 10  # the SQS event's BatchSize
# DynamoDB throttles in bursts (a flash sale); the SDK's default of 3 attempts gives up too soon for a write
# that follows a Fanfare completion. Backoff between attempts is the SDK's own (exponential, jittered).
DYNAMODB_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 10}
)


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class BatchItemFailures(TypedDict):
    """The answer Lambda reads from a function with `ReportBatchItemFailures`."""

    batchItemFailures: list[BatchItemFailure]


class QueueRecord:
    """The fields of one SQS event record that the consumer reads.

    (Powertools' `SQSRecord` has them too, but importing it imports every event data class of Powertools,
    ~15 ms of each cold start for four fields.)
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    @property
    def message_id(self) -> str:
        return str(self._raw["messageId"])

    @property
    def body(self) -> str:
        return str(self._raw["body"])

    @property
    def receipt_handle(self) -> str:
        return str(self._raw["receiptHandle"])

    @property
    def receive_count(self) -> int:
        """ApproximateReceiveCount: 1 on the first delivery."""
        attributes = self._raw.get("attributes") or {}
        return int(attributes.get("ApproximateReceiveCount") or 1)


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FanfareClientProvider:
    """One FanfareClient per container, rebuilt only when the credentials in Secrets Manager change."""

    def __init__(
        self,
        base_url: str,
        auth_style: AuthStyle,
        credentials: SecretsManagerFanfareCredentials,
        timeouts: FanfareTimeouts | None = None,
    ):
        self._base_url = base_url
        self._auth_style = auth_style
        self.timeouts = timeouts or FanfareTimeouts()
        self.credentials = credentials
        self._client: FanfareClient | None = None
        self._built_with: FanfareCredentials | None = None
        self._lock = threading.Lock()

    def __call__(self) -> FanfareClient:
        current = self.credentials.get()
        with self._lock:
            if self._client is None or current != self._built_with:
                previous = self._client
                self._client = FanfareClient(
                    base_url=self._base_url,
                    credentials=current,
                    # The client refuses plain http except to loopback (the local sandbox).
                    auth_style=self._auth_style,
                    timeouts=self.timeouts,
                )
                self._built_with = current
                if previous is not None:
                    previous.close()
            return self._client


class _ThreadSafeMetrics:
    """Records of a batch finish on several threads; Powertools' metric set is a plain dict."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()

    def add(self, name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
        with self._lock:
            self._metrics.add_metric(name=name, unit=unit, value=value)


class CompletionConsumer:
    def __init__(
        self,
        handler: OrderEventHandler,
        queue: CompletionQueueControls,
        fanfare: FanfareClientProvider,
        completer: AdmissionCompleter,
        logger: Logger,
        metrics: Metrics,
    ) -> None:
        self._handler = handler
        self._queue = queue
        self._fanfare = fanfare
        self.completer = completer
        self._logger = logger
        self._metrics = _ThreadSafeMetrics(metrics)
        self.executor = ThreadPoolExecutor(max_workers=BATCH_CONCURRENCY, thread_name_prefix="record")

    @classmethod
    def from_environment(cls, logger: Logger, metrics: Metrics) -> CompletionConsumer:
        auth_style = required_env("FANFARE_AUTH_STYLE")
        if auth_style not in ("headers", "bearer"):
            raise ConfigurationError("FANFARE_AUTH_STYLE must be 'headers' or 'bearer'")
        # One boto3 session for every client: its loaders and caches (endpoints, service models) are shared,
        # where a client made by Powertools' default secrets provider would start a session of its own.
        session = Session()
        fanfare = FanfareClientProvider(
            required_env("FANFARE_API_URL"),
            "bearer" if auth_style == "bearer" else "headers",
            SecretsManagerFanfareCredentials(
                required_env("FANFARE_CREDENTIALS_SECRET_ARN"),
                SecretsProvider(boto3_client=session.client("secretsmanager")),
            ),
        )
        dynamodb = session.client("dynamodb", config=DYNAMODB_CLIENT_CONFIG)
        completer = AdmissionCompleter(
            fanfare,
            DynamoDBPersistenceLayer(table_name=required_env("IDEMPOTENCY_TABLE"), boto3_client=dynamodb),
            idempotency_config(),
        )
        orders = OrdersTable(required_env("ORDERS_TABLE"), dynamodb)
        queue = CompletionQueueControls(
            required_env("COMPLETION_QUEUE_URL"),
            required_env("COMPLETION_DLQ_URL"),
            # Bounded calls: a hung SQS call must fail inside the function's 30 s, not at botocore's 60 s.
            # Made on first use: only retries and parked messages need it, not a batch that completes.
            lambda: session.client("sqs", config=SQS_CLIENT_CONFIG),
        )
        handler = OrderEventHandler(orders=orders, completer=completer, dead_letters=queue, now=utc_timestamp)
        return cls(handler, queue, fanfare, completer, logger, metrics)

    def process_batch(self, event: Mapping[str, Any]) -> BatchItemFailures:
        """Process every record of an SQS batch at once on the thread pool; report the ones that failed.

        The semantics of Powertools' batch processing with `ReportBatchItemFailures`: a record fails when
        its processing raises (whatever the exception), which never affects the batch's other records, and
        a batch whose records all failed is reported record by record rather than raised (a Fanfare outage
        is a retry, not a crash, so the consumer's error alarm keeps meaning "bug"). SQS deletes the
        records that are not listed.
        """
        records = event.get("Records")
        if not isinstance(records, list):
            raise ValueError("not an SQS event: no Records list")
        running = []
        for raw in records:
            record = QueueRecord(raw)
            running.append((record, self.executor.submit(self.process_record, record)))
        failures: list[BatchItemFailure] = []
        for record, outcome in running:
            if outcome.exception() is not None:
                failures.append({"itemIdentifier": record.message_id})
        return {"batchItemFailures": failures}

    def process_record(self, record: QueueRecord) -> None:
        """Raise to report the record as failed (SQS redelivers it after the delay set here)."""
        attempt = record.receive_count
        try:
            message = OrderMessage.from_json(record.body)
        except InvalidQueueMessageError as error:
            reason = f"invalid queue message ({error.problem_count} problems)"
            self._queue.park_in_dlq(record.body, reason, attempt)
            self._metrics.add("PermanentFailures", 1)
            self._logger.error(
                "record parked in DLQ", extra={"message_id": record.message_id, "reason": reason}
            )
            return
        context = {
            "order_id": message.orderId,
            "platform": message.platform.value,
            "shop": message.shop,
            "delivery_id": message.deliveryId,
            "message_id": record.message_id,
            "attempt": attempt,
        }
        try:
            report = self._handler.handle(message, record.body, attempt)
        except RetryLaterError as retry:
            # Count the calls made; the order itself is neither synced nor failed yet.
            for result in retry.report.completions:
                self._count_completion(result)
            self._retry(record, retry.delay_seconds, retry.reason, context)
            raise
        except DependencyUnavailableError as error:
            delay = retry_delay_seconds(attempt)
            self._retry(record, delay, str(error) or type(error).__name__, context)
            raise
        except Exception:
            # A bug: the record is retried by SQS after the queue's visibility timeout, and counted.
            self._metrics.add("RecordErrors", 1)
            self._logger.exception("order event failed unexpectedly", extra=context)
            raise
        self._account(report)
        log = self._logger.error if report.result is RecordResult.FAILED_PERMANENTLY else self._logger.info
        outcome = {"result": report.result.value, **({"detail": report.detail} if report.detail else {})}
        log("order event processed", extra={**context, **outcome})

    def _retry(self, record: QueueRecord, delay: int | None, reason: str, context: dict[str, Any]) -> None:
        self._metrics.add("CompletionRetries", 1)
        self._logger.warning(
            "completion will be retried", extra={**context, "reason": reason, "retry_in_seconds": delay}
        )
        if delay is None:
            return  # last attempt: the queue's redrive policy moves it to the DLQ
        try:
            self._queue.delay_redelivery(record.receipt_handle, delay)
        except DependencyUnavailableError:
            self._logger.warning(
                "could not set the retry delay; the queue's visibility timeout applies", extra=context
            )

    def _account(self, report: RecordReport) -> None:
        for result in report.completions:
            self._count_completion(result)
        metric = {
            RecordResult.FAILED_PERMANENTLY: "PermanentFailures",
            RecordResult.SYNCED: "OrdersSynced",
            RecordResult.ALREADY_SYNCED: "DuplicatesSkipped",
            RecordResult.RECORDED: "OrderEventsRecorded",
            RecordResult.IGNORED: "OrderEventsIgnored",
        }[report.result]
        self._metrics.add(metric, 1)

    def _count_completion(self, result: CompletionResult) -> None:
        if result.status_code is not None or result.outcome is not CompletionOutcome.RETRYABLE:
            self._metrics.add("FanfareLatency", result.elapsed_ms, MetricUnit.Milliseconds)
        if result.outcome is CompletionOutcome.COMPLETED:
            self._metrics.add("Completions", 1)
        elif result.outcome is CompletionOutcome.ALREADY_COMPLETED:
            self._metrics.add("AlreadyCompleted", 1)
        if result.misconfiguration:
            self._metrics.add("FanfareAuthFailures", 1)
            # A 401/403 may mean the key was rotated: re-read it before the next call.
            self._fanfare.credentials.refresh_soon()

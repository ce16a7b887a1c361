"""Handle one order event from the completion queue: record it, complete its admissions, decide retries.

Exactly-once rests on three guards, outermost first: the order item's sync state (an order already synced
is never completed again, however late a replay arrives), per-admission state (a retried order only
completes what is still pending), and Powertools idempotency around the Fanfare call itself (concurrent
copies and redeliveries call Fanfare once).

The order is read once before the attempt and written once after it (see OrdersTable.record_attempt): a
consumer that dies during the Fanfare call leaves no half-written order, and SQS redelivers the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pydantic import ValidationError

from fanfare_sync.logic.retry_schedule import retry_delay_seconds
from fanfare_sync.models.fanfare import (
    CompletionMetadata,
    CompletionOutcome,
    CompletionRequest,
    CompletionResult,
    UnknownDistributionType,
)
from fanfare_sync.models.orders import (
    AttemptEnd,
    AttemptRecord,
    CompletedAdmission,
    OrderState,
    StoredAdmission,
    SyncStatus,
)
from fanfare_sync.models.queue_message import OrderEventKind, OrderMessage

_FANFARE_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,8})?")


class RecordResult(StrEnum):
    SYNCED = "synced"
    ALREADY_SYNCED = "already_synced"
    FAILED_PERMANENTLY = "failed_permanently"
    RECORDED = "recorded"
    IGNORED = "ignored"


@dataclass
class RecordReport:
    result: RecordResult
    completions: list[CompletionResult] = field(default_factory=list)
    detail: str = ""


class RetryLaterError(Exception):
    """The record must be tried again after `delay_seconds` (the caller sets the message's visibility)."""

    def __init__(self, reason: str, delay_seconds: int, report: RecordReport) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_seconds = delay_seconds
        self.report = report


class OrderRepository(Protocol):
    def load(self, message: OrderMessage) -> OrderState: ...

    def record_attempt(
        self, message: OrderMessage, state: OrderState, record: AttemptRecord, now: str
    ) -> bool: ...

    def record_lifecycle(self, message: OrderMessage, now: str) -> bool: ...


class Completer(Protocol):
    def complete(self, request: CompletionRequest) -> CompletionResult: ...


class DeadLetters(Protocol):
    def park_in_dlq(self, body: str, reason: str, attempt: int) -> None: ...


@dataclass
class OrderEventHandler:
    orders: OrderRepository
    completer: Completer
    dead_letters: DeadLetters
    now: Callable[[], str]

    def handle(self, message: OrderMessage, body: str, attempt: int) -> RecordReport:
        if message.kind is not OrderEventKind.PAID:
            recorded = self.orders.record_lifecycle(message, self.now())
            return RecordReport(RecordResult.RECORDED if recorded else RecordResult.IGNORED)
        if not message.admissions:
            # The webhooks never queue one; a hand-made or corrupted message would leave the order pending
            # for ever, so it goes to the DLQ for a human instead.
            self.dead_letters.park_in_dlq(body, "paid order without admissions", attempt)
            return RecordReport(RecordResult.FAILED_PERMANENTLY, detail="paid order without admissions")

        state = self.orders.load(message)
        if state.sync_status is SyncStatus.SYNCED:
            return RecordReport(RecordResult.ALREADY_SYNCED)
        report = RecordReport(RecordResult.SYNCED)
        record = self._attempt(state, message, attempt, report)
        # One write of the order after Fanfare answered, whatever the outcome.
        if not self.orders.record_attempt(message, state, record, self.now()):
            # Another delivery of this order synced it while this one was failing: nothing is left to do.
            return RecordReport(RecordResult.ALREADY_SYNCED, report.completions)
        if record.end is AttemptEnd.RETRY:
            raise RetryLaterError(record.reason, record.retry_in_seconds or 0, report)
        if record.end is AttemptEnd.FAILED:
            self.dead_letters.park_in_dlq(body, record.reason, attempt)
            report.result = RecordResult.FAILED_PERMANENTLY
            report.detail = record.reason
        return report

    def _attempt(
        self, state: OrderState, message: OrderMessage, attempt: int, report: RecordReport
    ) -> AttemptRecord:
        """Complete the order's pending admissions in turn; stop at the first that does not complete."""
        record = AttemptRecord(attempt=attempt)
        for index in state.pending_indexes:
            admission = state.admissions[index]
            try:
                request = completion_request(admission, message, self.now())
            except (UnknownDistributionType, ValidationError) as error:
                # Rejected before any call: no retry can turn an unknown type into a known one.
                return _ended(record, AttemptEnd.FAILED, _invalid_request_reason(error), failed_index=index)
            result = self.completer.complete(request)
            report.completions.append(result)
            record.fanfare_calls += 1
            if result.is_success:
                details = {
                    "alreadyCompleted": result.outcome is CompletionOutcome.ALREADY_COMPLETED,
                    "statusCode": result.status_code,
                    "remoteStatus": result.remote_status,
                    "latencyMs": result.elapsed_ms,
                }
                record.completed.append(CompletedAdmission(index, details))
            elif result.outcome is CompletionOutcome.PERMANENT:
                return _ended(record, AttemptEnd.FAILED, result.reason, failed_index=index)
            else:
                delay = retry_delay_seconds(attempt, result.retry_after_seconds)
                if delay is None:
                    return _ended(
                        record, AttemptEnd.FAILED, f"gave up after {attempt} attempts: {result.reason}"
                    )
                record.retry_in_seconds = delay
                return _ended(record, AttemptEnd.RETRY, result.reason)
        return record


def _ended(
    record: AttemptRecord, end: AttemptEnd, reason: str, *, failed_index: int | None = None
) -> AttemptRecord:
    record.end = end
    record.reason = reason
    record.failed_index = failed_index
    return record


def completion_request(
    admission: StoredAdmission, message: OrderMessage, completed_at: str
) -> CompletionRequest:
    """The guide's call body; metadata is analytics, so gaps in it never block a completion."""
    return CompletionRequest(
        distribution_id=admission.distribution_id,
        distribution_type=admission.distribution_type,
        consumer_id=admission.consumer_id,
        metadata=CompletionMetadata(
            orderId=message.orderId,
            orderAmount=_metadata_amount(message.amount),
            completedAt=completed_at,
            platform=message.platform.value,
            itemCount=message.itemCount,
            # ISO 4217's code for "no currency" when the shop sent none.
            currency=message.currency if message.currency and len(message.currency) == 3 else "XXX",
        ),
    )


def _metadata_amount(amount: str | None) -> str:
    # Fanfare's decimal pattern: up to 12 digits and 8 decimals, never negative.
    return amount if amount and _FANFARE_AMOUNT.fullmatch(amount) else "0"


def _invalid_request_reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        # pydantic's own messages for these fields never quote the input; our validators' say what failed.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        return f"cannot build the Fanfare request ({problems})"
    return str(error)

"""Handle one order event from the completion queue: record it, complete its admissions, decide retries.

Exactly-once rests on three guards, outermost first: the order item's sync state (an order already synced
is never completed again, however late a replay arrives), per-admission state (a retried order only
completes what is still pending), and Powertools idempotency around the Fanfare call itself (concurrent
copies and redeliveries call Fanfare once).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from fanfare_sync.logic.retry_schedule import retry_delay_seconds
from fanfare_sync.models.fanfare import (
    CompletionMetadata,
    CompletionOutcome,
    CompletionRequest,
    CompletionResult,
    UnknownDistributionType,
)
from fanfare_sync.models.orders import OrderKey, OrderState, StoredAdmission, SyncStatus
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
    def record_paid(self, message: OrderMessage, now: str) -> OrderState: ...

    def record_admission_completed(
        self, state: OrderState, index: int, attempt: int, now: str, details: dict[str, Any]
    ) -> None: ...

    def record_retry(
        self, key: OrderKey, attempt: int, reason: str, delay_seconds: int, now: str
    ) -> None: ...

    def record_failed(
        self,
        state: OrderState,
        attempt: int,
        reason: str,
        now: str,
        *,
        index: int | None,
        attempted: bool = True,
    ) -> None: ...

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

        state = self.orders.record_paid(message, self.now())
        if state.sync_status is SyncStatus.SYNCED:
            return RecordReport(RecordResult.ALREADY_SYNCED)
        report = RecordReport(RecordResult.SYNCED)
        for index in state.pending_indexes:
            admission = state.admissions[index]
            try:
                request = completion_request(admission, message, self.now())
            except (UnknownDistributionType, ValidationError) as error:
                # Rejected before any call: no retry can turn an unknown type into a known one.
                reason = _invalid_request_reason(error)
                return self._fail(state, index, body, attempt, reason, report, attempted=False)
            result = self.completer.complete(request)
            report.completions.append(result)
            if result.is_success:
                details = {
                    "alreadyCompleted": result.outcome is CompletionOutcome.ALREADY_COMPLETED,
                    "statusCode": result.status_code,
                    "remoteStatus": result.remote_status,
                    "latencyMs": result.elapsed_ms,
                }
                self.orders.record_admission_completed(state, index, attempt, self.now(), details)
            elif result.outcome is CompletionOutcome.PERMANENT:
                return self._fail(state, index, body, attempt, result.reason, report)
            else:
                delay = retry_delay_seconds(attempt, result.retry_after_seconds)
                if delay is None:
                    reason = f"gave up after {attempt} attempts: {result.reason}"
                    return self._fail(state, None, body, attempt, reason, report)
                self.orders.record_retry(state.key, attempt, result.reason, delay, self.now())
                raise RetryLaterError(result.reason, delay, report)
        return report

    def _fail(
        self,
        state: OrderState,
        index: int | None,
        body: str,
        attempt: int,
        reason: str,
        report: RecordReport,
        *,
        attempted: bool = True,
    ) -> RecordReport:
        self.orders.record_failed(state, attempt, reason, self.now(), index=index, attempted=attempted)
        self.dead_letters.park_in_dlq(body, reason, attempt)
        report.result = RecordResult.FAILED_PERMANENTLY
        report.detail = reason
        return report


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

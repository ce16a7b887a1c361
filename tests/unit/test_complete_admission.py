"""AdmissionCompleter around Powertools idempotency, with an in-memory persistence layer of our own."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

from fanfare_sync.logic.complete_admission import AdmissionCompleter, idempotency_config
from fanfare_sync.models.fanfare import (
    CompletionMetadata,
    CompletionOutcome,
    CompletionRequest,
    CompletionResult,
)
from fanfare_sync_cli.local.lambda_context import LocalLambdaContext


class MemoryStore(BasePersistenceLayer):
    def __init__(self, fail_success_write: bool = False) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}
        self.fail_success_write = fail_success_write

    def _get_record(self, idempotency_key: str) -> DataRecord:
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        if data_record.idempotency_key in self.records:
            raise IdempotencyItemAlreadyExistsError
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        if self.fail_success_write:
            raise RuntimeError("ProvisionedThroughputExceededException")
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


class Fanfare:
    def __init__(self, outcome: CompletionOutcome = CompletionOutcome.COMPLETED) -> None:
        self.calls = 0
        self.outcome = outcome

    def complete_admission(self, request: CompletionRequest) -> CompletionResult:
        self.calls += 1
        return CompletionResult(
            outcome=self.outcome,
            status_code=200 if self.outcome.is_success else 503,
            reason="ok",
            elapsed_ms=3.0,
        )


def request(consumer: str = "c1") -> CompletionRequest:
    return CompletionRequest(
        distribution_id="q1",
        distribution_type="queue",
        consumer_id=consumer,
        metadata=CompletionMetadata(
            orderId="1",
            orderAmount="1.00",
            completedAt="2026-11-27T00:00:00Z",
            platform="shopify",
            itemCount=1,
            currency="USD",
        ),
    )


def completer(fanfare: Fanfare, store: MemoryStore) -> AdmissionCompleter:
    subject = AdmissionCompleter(lambda: fanfare, store, idempotency_config())
    subject.config.register_lambda_context(LocalLambdaContext())  # as the handler does per invocation
    return subject


def test_second_request_for_the_same_admission_reuses_the_stored_result() -> None:
    fanfare, store = Fanfare(), MemoryStore()
    subject = completer(fanfare, store)
    first, second = subject.complete(request()), subject.complete(request())
    assert (first.outcome, second.outcome) == (CompletionOutcome.COMPLETED, CompletionOutcome.COMPLETED)
    assert fanfare.calls == 1
    subject.complete(request("c2"))
    assert fanfare.calls == 2


def test_a_failed_call_stores_nothing_so_the_retry_calls_again() -> None:
    fanfare, store = Fanfare(CompletionOutcome.RETRYABLE), MemoryStore()
    subject = completer(fanfare, store)
    assert subject.complete(request()).outcome is CompletionOutcome.RETRYABLE
    assert store.records == {}
    fanfare.outcome = CompletionOutcome.COMPLETED
    assert subject.complete(request()).outcome is CompletionOutcome.COMPLETED
    assert fanfare.calls == 2


def test_completion_accepted_by_fanfare_survives_a_failed_success_write() -> None:
    # Fanfare completed it; DynamoDB then refused the idempotency record's success write.
    fanfare, store = Fanfare(), MemoryStore(fail_success_write=True)
    result = completer(fanfare, store).complete(request())
    assert result.outcome is CompletionOutcome.COMPLETED  # reported, so the order is marked synced
    assert fanfare.calls == 1


def test_a_persistence_failure_before_any_call_is_not_swallowed() -> None:
    class Broken(MemoryStore):
        def _put_record(self, data_record: DataRecord) -> None:
            raise RuntimeError("table unreachable")

    fanfare = Fanfare()
    with pytest.raises(IdempotencyPersistenceLayerError):
        completer(fanfare, Broken()).complete(request())
    assert fanfare.calls == 0

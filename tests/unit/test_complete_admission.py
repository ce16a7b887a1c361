"""AdmissionCompleter around Powertools idempotency, with an in-memory persistence layer of our own; the
consumer's partial batch responses."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

from fanfare_sync.adapters.completion_queue import CompletionQueueControls
from fanfare_sync.completion_consumer import BATCH_CONCURRENCY, CompletionConsumer, QueueRecord
from fanfare_sync.errors import DependencyUnavailableError
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


# ------------------------------------------------------------------ the consumer's partial batch responses
class ScriptedConsumer(CompletionConsumer):
    """The real `process_batch` over a `process_record` that does what each record's body says."""

    def __init__(self, parties: int = 1) -> None:  # no AWS, no Fanfare: only the batch loop is under test
        self.executor = ThreadPoolExecutor(max_workers=BATCH_CONCURRENCY)
        self.together = threading.Barrier(parties, timeout=10)
        self.seen: list[str] = []

    def process_record(self, record: QueueRecord) -> None:
        self.seen.append(record.message_id)
        if record.body == "together":
            self.together.wait()  # raises BrokenBarrierError unless `parties` records run at the same time
        elif record.body == "bug":
            raise KeyError("a bug in this record only")
        elif record.body == "retry":
            raise DependencyUnavailableError("Fanfare is down")


def sqs_batch(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": f"r{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "2"},
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_a_batch_reports_exactly_the_records_whose_processing_raised() -> None:
    consumer = ScriptedConsumer()
    response = consumer.process_batch(sqs_batch("ok", "bug", "ok", "retry", "ok"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert sorted(consumer.seen) == ["m0", "m1", "m2", "m3", "m4"]  # one bug did not stop the others


def test_a_batch_whose_records_all_failed_is_reported_not_raised() -> None:
    response = ScriptedConsumer().process_batch(sqs_batch("retry", "bug", "retry"))
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{n}"} for n in range(3)]}


def test_a_batch_that_succeeds_reports_no_failures() -> None:
    assert ScriptedConsumer().process_batch(sqs_batch("ok", "ok")) == {"batchItemFailures": []}
    assert ScriptedConsumer().process_batch({"Records": []}) == {"batchItemFailures": []}


def test_the_records_of_a_batch_of_ten_run_at_the_same_time() -> None:
    consumer = ScriptedConsumer(parties=BATCH_CONCURRENCY)
    response = consumer.process_batch(sqs_batch(*["together"] * BATCH_CONCURRENCY))
    assert response == {"batchItemFailures": []}


def test_an_event_without_records_is_refused() -> None:
    with pytest.raises(ValueError, match="no Records"):
        ScriptedConsumer().process_batch({"detail": "not an SQS event"})


def test_queue_record_reads_the_fields_the_consumer_uses() -> None:
    [raw] = sqs_batch("body")["Records"]
    record = QueueRecord(raw)
    assert (record.message_id, record.receipt_handle, record.body, record.receive_count) == (
        "m0",
        "r0",
        "body",
        2,
    )
    assert QueueRecord({"messageId": "m", "receiptHandle": "r", "body": ""}).receive_count == 1


def test_the_sqs_client_is_made_once_and_only_when_first_needed() -> None:
    made: list[object] = []
    sent: list[dict[str, Any]] = []

    class Client:
        def change_message_visibility(self, **kwargs: Any) -> None:
            sent.append(kwargs)

    def make() -> Client:
        client = Client()
        made.append(client)
        return client

    queue = CompletionQueueControls("queue-url", "dlq-url", make)
    assert made == []  # a batch that completes never builds it
    with ThreadPoolExecutor(max_workers=BATCH_CONCURRENCY) as pool:
        list(pool.map(lambda n: queue.delay_redelivery(f"r{n}", 5), range(BATCH_CONCURRENCY)))
    assert len(made) == 1
    assert len(sent) == BATCH_CONCURRENCY

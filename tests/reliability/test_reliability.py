"""Break things on purpose and prove: nothing lost, nothing completed twice, nobody gets in."""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from fanfare_sync.logic.complete_admission import IDEMPOTENCY_KEY_PREFIX
from tests.fuzz.fuzz_webhooks import run as fuzz
from tests.reliability.harness import Stack, paid_webhook
from tests.reliability.report import Report, Row, readme_block, write_readme_block

# `make test` runs on two workers with --dist loadfile: this whole suite is one file, so its scenarios run
# on one worker, in order, and the last test sees every row of the README table.


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: Any) -> Any:
        yield self._body

    def read(self, *_args: Any) -> bytes:
        return self._body


_THROTTLED = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}'


def throttled() -> AWSResponse:
    """What DynamoDB answers a throttled request; botocore's own retry handling sees it as the real thing."""
    headers = {"x-amzn-errortype": "ProvisionedThroughputExceededException"}
    return AWSResponse("https://dynamodb.local/", 400, headers, _RawBody(_THROTTLED))


def unfaulted_calls(stack: Stack) -> Counter[str]:
    """Calls Fanfare accepted and processed, per admission path and consumer (a second one is a duplicate)."""
    return Counter(
        f"{r['path']}#{r['body'].get('consumerId') if isinstance(r['body'], dict) else ''}"
        for r in stack.sandbox.requests()
        if r["fault"] is None and r["status"] is not None and r["path"].endswith("/complete")
    )


def duplicates(stack: Stack) -> int:
    return sum(n - 1 for n in unfaulted_calls(stack).values() if n > 1)


def test_fanfare_failing_30_percent_of_calls(
    stack: Stack, report: Report, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a planned fault per order: ~30 % of calls fail as 5xx, 429 with Retry-After, or a timeout
    plan = random.Random(20261127)
    orders = range(1, 1001)
    rules: list[dict[str, Any]] = []
    for number in orders:
        failures = plan.choices([0, 1, 2, 3], weights=[70, 17, 8, 5])[0]
        for _ in range(failures):
            kind = plan.choices(["500", "503", "429", "timeout"], weights=[40, 32, 26, 2])[0]
            rule: dict[str, Any] = {"distribution_id": f"queue_{number}", "times": 1}
            if kind == "timeout":
                rule["timeout"] = True
            elif kind == "429":
                rule.update(status=429, retry_after=2)
            else:
                rule["status"] = int(kind)
            rules.append(rule)
    stack.sandbox.set_faults(rules=rules)
    # When 1,000 paid orders arrive and the consumer drains the queue
    # (in waves of 100, as webhooks and the consumer run side by side; moto's SQS slows with a long queue)
    statuses: Counter[int] = Counter()
    for wave in range(0, 1000, 100):
        statuses.update(stack.deliver(paid_webhook(number)) for number in orders[wave : wave + 100])
        stack.drain()
    assert statuses == {200: 1000}
    # Then every admission was completed exactly once
    calls = len([r for r in stack.sandbox.requests() if r["path"].endswith("/complete")])
    faulted = calls - sum(unfaulted_calls(stack).values())
    assert faulted == len(rules)
    assert 0.25 < faulted / calls < 0.35
    assert len(stack.completions_per_admission()) == 1000
    assert duplicates(stack) == 0
    assert stack.synced(orders) == list(orders)
    # A 429 on a first attempt waits its Retry-After (2 s) rather than the schedule's 1 s.
    assert 2 in stack.delays
    assert set(stack.delays) <= {1, 2, 5, 30}
    assert stack.leaks(capfd.readouterr().out) == []
    report.add(
        Row(
            scenario="Fanfare failing ~30 % of calls (5xx, 429 + Retry-After, timeouts)",
            inputs="1,000 orders",
            faults=f"{faulted} of {calls} Fanfare calls ({faulted / calls:.0%})",
            lost=1000 - len(stack.synced(orders)),
            duplicate_completions=duplicates(stack),
            unauthorized_queued=0,
        )
    )


def test_sqs_unavailable_at_ingest_then_platform_retry(
    stack: Stack, report: Report, capfd: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import EndpointConnectionError

    def sqs_down(**_kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")

    sqs_client = stack.ingest.endpoint._queue._sqs
    sqs_client.meta.events.register("before-send.sqs.SendMessage", sqs_down)
    first = [stack.deliver(paid_webhook(number)) for number in range(1, 21)]
    sqs_client.meta.events.unregister("before-send.sqs.SendMessage", sqs_down)
    # The platform retries what was not acknowledged (Shopify retries any non-2xx with the same payload).
    retried = [stack.deliver(paid_webhook(number)) for number in range(1, 21)]
    stack.drain()
    assert first == [503] * 20
    assert retried == [200] * 20
    assert len(stack.completions_per_admission()) == 20
    assert duplicates(stack) == 0
    assert stack.leaks(capfd.readouterr().out) == []
    report.add(
        Row(
            scenario="SQS unavailable at ingest, then the platform retries",
            inputs="20 orders, 40 deliveries",
            faults="20 SendMessage failures (503 answered)",
            lost=20 - len(stack.synced(range(1, 21))),
            duplicate_completions=duplicates(stack),
            unauthorized_queued=0,
        )
    )


def test_dynamodb_throttling_on_the_consumer(
    stack: Stack, report: Report, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the consumer's DynamoDB client answering ~20 % of its calls with throttling errors
    plan = random.Random(7)
    injected = Counter[str]()

    def sometimes_throttled(event_name: str, **_kwargs: Any) -> AWSResponse | None:
        # botocore's before-send: returning a response replaces the HTTP call, retries included.
        if plan.random() < 0.2:
            injected[event_name.rsplit(".", 1)[-1]] += 1
            return throttled()
        return None

    dynamodb = stack.consumer.consumer._handler.orders._ddb
    dynamodb.meta.events.register("before-send.dynamodb", sometimes_throttled)
    orders = range(1, 61)
    for number in orders:
        assert stack.deliver(paid_webhook(number)) == 200
    stack.drain()
    dynamodb.meta.events.unregister("before-send.dynamodb", sometimes_throttled)
    assert sum(injected.values()) > 20
    assert len(stack.completions_per_admission()) == 60
    assert duplicates(stack) == 0
    assert stack.synced(orders) == list(orders)
    assert stack.leaks(capfd.readouterr().out) == []
    report.add(
        Row(
            scenario="DynamoDB throttling on the consumer",
            inputs="60 orders",
            faults=f"{sum(injected.values())} throttled DynamoDB calls (~20 %)",
            lost=60 - len(stack.synced(orders)),
            duplicate_completions=duplicates(stack),
            unauthorized_queued=0,
        )
    )


# A killed invocation flushes no metrics (Powertools warns about it); that is the point of the scenario.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_consumer_killed_between_fanfare_call_and_delete(
    stack: Stack, report: Report, capfd: pytest.CaptureFixture[str]
) -> None:
    orders_adapter = stack.consumer.consumer._handler.orders
    record_for_real = orders_adapter.record_attempt
    killed: set[str] = set()

    def killed_once(message: Any, *args: Any, **kwargs: Any) -> bool:
        if message.orderId not in killed:
            killed.add(message.orderId)
            raise SystemExit("container killed")  # not an Exception: nothing in the handler catches it
        return bool(record_for_real(message, *args, **kwargs))

    orders_adapter.record_attempt = killed_once
    orders = range(1, 51)
    for number in orders:
        stack.deliver(paid_webhook(number))
    stack.drain()
    assert len(killed) == 50
    assert len(stack.completions_per_admission()) == 50
    assert duplicates(stack) == 0
    assert stack.synced(orders) == list(orders)
    assert stack.leaks(capfd.readouterr().out) == []
    report.add(
        Row(
            scenario="Consumer killed between the Fanfare call and the delete",
            inputs="50 orders",
            faults="50 kills after Fanfare completed, before anything was recorded",
            lost=50 - len(stack.synced(orders)),
            duplicate_completions=duplicates(stack),
            unauthorized_queued=0,
        )
    )


def test_secrets_manager_unavailable_then_back(
    stack: Stack, report: Report, moto_server: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import EndpointConnectionError

    secrets_down = {"on": True}
    refused: list[str] = []

    def unreachable(event_name: str, **_kwargs: Any) -> None:
        if secrets_down["on"]:
            refused.append(event_name)
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com/")

    # Each function reads its secret with a client of its own: cut both off.
    ingest_secrets = stack.ingest.endpoint._secrets._client
    credentials = stack.consumer.consumer._fanfare.credentials._provider
    consumer_secrets = credentials.client
    for client in (ingest_secrets, consumer_secrets):
        client.meta.events.register("before-send.secrets-manager", unreachable)
    try:
        during = [stack.deliver(paid_webhook(number)) for number in range(1, 11)]
        secrets_down["on"] = False
        after = [stack.deliver(paid_webhook(number)) for number in range(1, 11)]
        # The consumer cannot read Fanfare credentials while it is down: retried, not crashed.
        secrets_down["on"] = True
        credentials.clear_cache()
        refused_before_poll = len(refused)
        stack.poll()
        consumer_refusals = len(refused) - refused_before_poll
        secrets_down["on"] = False
        stack.drain()
    finally:
        for client in (ingest_secrets, consumer_secrets):
            client.meta.events.unregister("before-send.secrets-manager", unreachable)
    output = capfd.readouterr().out
    assert during == [503] * 10
    assert after == [200] * 10
    assert consumer_refusals > 0  # the consumer really met the outage (its cached credentials were dropped)
    assert "CompletionRetries" in output
    assert "RecordErrors" not in output  # dependency failures are retries, never counted as crashes
    assert len(stack.completions_per_admission()) == 10
    assert duplicates(stack) == 0
    assert stack.leaks(output) == []
    report.add(
        Row(
            scenario="Secrets Manager unavailable, then back",
            inputs="10 orders, 20 deliveries",
            faults="ingest: 10 unreadable webhook secrets (503); consumer: unreadable Fanfare credentials",
            lost=10 - len(stack.synced(range(1, 11))),
            duplicate_completions=duplicates(stack),
            unauthorized_queued=0,
        )
    )


def test_same_webhook_ten_times_concurrently_and_spread_over_time(
    stack: Stack, report: Report, capfd: pytest.CaptureFixture[str]
) -> None:
    stack.sandbox.set_faults(latency_ms=200)  # slow enough for concurrent copies to overlap
    burst = paid_webhook(1, webhook_id="wh-burst")
    assert [stack.deliver(burst) for _ in range(10)] == [200] * 10
    stack.drain()  # the ten copies arrive in one batch and are processed side by side
    spread = paid_webhook(2, webhook_id="wh-spread")
    for _ in range(10):
        assert stack.deliver(spread) == 200
        stack.poll()
    stack.drain()
    assert len(stack.completions_per_admission()) == 2
    assert duplicates(stack) == 0
    assert stack.leaks(capfd.readouterr().out) == []
    report.add(
        Row(
            scenario="Same webhook 10 times, concurrently and spread over time",
            inputs="2 orders, 20 deliveries",
            faults="18 duplicate deliveries",
            lost=2 - len(stack.synced([1, 2])),
            duplicate_completions=duplicates(stack),
            unauthorized_queued=0,
        )
    )


def test_replay_after_the_idempotency_record_expired(
    stack: Stack, report: Report, capfd: pytest.CaptureFixture[str]
) -> None:
    webhook = paid_webhook(1)
    stack.deliver(webhook)
    stack.drain()
    # The 24 h idempotency record is gone (TTL), and Shopify replays the original payload.
    table = stack.resources.ref("IdempotencyTable")
    records = stack.dynamodb.scan(TableName=table)["Items"]
    assert [r["id"]["S"].startswith(IDEMPOTENCY_KEY_PREFIX) for r in records] == [True]
    for record in records:
        stack.dynamodb.delete_item(TableName=table, Key={"id": record["id"]})
    assert stack.deliver(webhook) == 200
    stack.drain()
    assert len(stack.sandbox.requests()) == 1  # the order's own sync state stopped the replay before Fanfare
    assert duplicates(stack) == 0
    assert stack.leaks(capfd.readouterr().out) == []
    report.add(
        Row(
            scenario="Replay after the idempotency record expired",
            inputs="1 order, 2 deliveries",
            faults="idempotency record deleted before the replay",
            lost=1 - len(stack.synced([1])),
            duplicate_completions=duplicates(stack),
            unauthorized_queued=0,
        )
    )


def test_two_thousand_fuzzed_webhooks_keep_every_invariant(report: Report) -> None:
    # Every input is checked inside run(): no 500, no crash, nothing queued without a valid signature.
    fuzzed = fuzz(count=2_000, seed=20261127)
    assert fuzzed.inputs == 2_000
    # The sample must exercise the deep paths, not only the signature check.
    assert fuzzed.outcomes["queued"] > 50
    assert fuzzed.outcomes["malformed"] > 50
    assert fuzzed.outcomes["unauthorized"] > 50
    assert fuzzed.queued == fuzzed.outcomes["queued"]
    report.add(
        Row(
            scenario="Forged, mutated and hostile webhooks (fuzz sample)",
            inputs="2,000 webhooks",
            faults=(
                f"{fuzzed.outcomes['unauthorized']} forged or unsigned, "
                f"{fuzzed.outcomes['malformed']} malformed"
            ),
            lost=0,
            duplicate_completions=0,
            unauthorized_queued=0,
        )
    )


# Last in the file on purpose: it checks the table the scenarios above just produced.
def test_readme_reliability_table_matches_this_run(report: Report) -> None:
    if not report.complete:
        pytest.skip("only the whole reliability suite produces the table; this run selected a subset of it")
    table = report.render()
    if os.environ.get("UPDATE_README"):
        write_readme_block(table)
    assert readme_block() == table, (
        "the README's Reliability table is out of date: run `make reliability-report`"
    )

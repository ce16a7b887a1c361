"""The real FanfareClient against a real FanfareSandbox on 127.0.0.1: contract, faults and concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fanfare_sync.adapters.fanfare_api import AuthStyle, FanfareClient, FanfareCredentials, FanfareTimeouts
from fanfare_sync.models.fanfare import CompletionMetadata, CompletionOutcome, CompletionRequest
from fanfare_sync_cli.sandbox import FanfareSandbox

ORG_ID = "org_it"
SECRET = "sk_test_integration_9f3b"
REPO_ROOT = Path(__file__).resolve().parents[2]

ClientFactory = Callable[..., FanfareClient]


@pytest.fixture
def sandbox() -> Iterator[FanfareSandbox]:
    with FanfareSandbox(org_id=ORG_ID, secret_key=SECRET) as running:
        yield running


@pytest.fixture
def make_client(sandbox: FanfareSandbox) -> Iterator[ClientFactory]:
    clients: list[FanfareClient] = []

    def factory(
        *,
        auth_style: AuthStyle = "headers",
        secret_key: str = SECRET,
        timeouts: FanfareTimeouts | None = None,
    ) -> FanfareClient:
        client = FanfareClient(
            base_url=sandbox.base_url,
            credentials=FanfareCredentials(org_id=ORG_ID, secret_key=secret_key),
            auth_style=auth_style,
            timeouts=timeouts,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> FanfareClient:
    return make_client()


def completion(
    consumer_id: str = "cons_1", distribution_id: str = "queue_1", kind: str = "queue"
) -> CompletionRequest:
    return CompletionRequest(
        distribution_id=distribution_id,
        distribution_type=kind,
        consumer_id=consumer_id,
        metadata=CompletionMetadata(
            orderId=f"order-{consumer_id}",
            orderAmount="49.90",
            completedAt="2025-06-01T12:00:00Z",
            platform="woocommerce",
            itemCount=1,
            currency="USD",
        ),
    )


# --- the contract ---------------------------------------------------------------------------------------


def test_completes_once_then_reports_already_completed(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    # Given a fresh admission
    request = completion()

    # When it is completed twice (an SQS redelivery, say)
    first = client.complete_admission(request)
    second = client.complete_admission(request)

    # Then the first completes, the repeat is recognised as already done, and Fanfare holds one completion
    assert (first.outcome, first.status_code, first.remote_status) == (
        CompletionOutcome.COMPLETED,
        200,
        "COMPLETED",
    )
    assert (second.outcome, second.status_code) == (CompletionOutcome.ALREADY_COMPLETED, 409)
    assert second.outcome.is_success
    (recorded,) = sandbox.completions()
    assert (recorded["distribution_type"], recorded["distribution_id"], recorded["consumer_id"]) == (
        "queue",
        "queue_1",
        "cons_1",
    )
    assert recorded["metadata"] is not None
    assert recorded["metadata"]["orderAmount"] == "49.90"


def test_repeat_can_be_answered_200_completed_instead(sandbox: FanfareSandbox, client: FanfareClient) -> None:
    sandbox.set_repeat_completion("ok")

    first = client.complete_admission(completion())
    second = client.complete_admission(completion())

    assert first.outcome is CompletionOutcome.COMPLETED
    assert (second.outcome, second.status_code, second.remote_status) == (
        CompletionOutcome.COMPLETED,
        200,
        "COMPLETED",
    )
    assert len(sandbox.completions()) == 1


@pytest.mark.parametrize("kind", ["queue", "draw", "auction", "timed_release"])
def test_every_distribution_type_completes_with_bearer_auth_too(
    sandbox: FanfareSandbox, make_client: ClientFactory, kind: str
) -> None:
    result = make_client(auth_style="bearer").complete_admission(completion(kind=kind))

    assert result.outcome is CompletionOutcome.COMPLETED
    assert [c["distribution_type"] for c in sandbox.completions()] == [kind]


def test_the_same_consumer_in_two_distribution_types_is_two_admissions(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    assert client.complete_admission(completion(kind="queue")).outcome is CompletionOutcome.COMPLETED
    assert client.complete_admission(completion(kind="draw")).outcome is CompletionOutcome.COMPLETED
    assert len(sandbox.completions()) == 2


@pytest.mark.parametrize("auth_style", ["headers", "bearer"])
def test_bad_credentials_are_retryable_misconfiguration(
    sandbox: FanfareSandbox, make_client: ClientFactory, auth_style: AuthStyle
) -> None:
    result = make_client(auth_style=auth_style, secret_key="sk_test_wrong").complete_admission(completion())

    assert (result.outcome, result.status_code, result.misconfiguration) == (
        CompletionOutcome.RETRYABLE,
        401,
        True,
    )
    assert sandbox.completions() == []


@pytest.mark.parametrize(
    ("body", "bad_field"),
    [
        ({"metadata": {}}, "consumerId"),
        ({"consumerId": ""}, "consumerId"),
        ({"consumerId": 42}, "consumerId"),
        ({"consumerId": "cons_1", "metadata": "order 5"}, "metadata"),
    ],
)
def test_a_malformed_body_is_a_400_validation_error(
    sandbox: FanfareSandbox, body: object, bad_field: str
) -> None:
    response = httpx.post(
        f"{sandbox.base_url}/queues/queue_1/complete",
        json=body,
        headers={"X-Organization-Id": ORG_ID, "X-Secret-Key": SECRET},
    )

    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "validation_error"
    assert [issue["path"][0]["key"] for issue in answer["issues"]] == [bad_field]
    assert sandbox.completions() == []


def test_a_body_that_is_not_json_is_a_400(sandbox: FanfareSandbox) -> None:
    response = httpx.post(
        f"{sandbox.base_url}/draws/d1/complete",
        content=b"consumerId=cons_1",
        headers={"Authorization": f"Bearer {SECRET}"},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


@pytest.mark.parametrize("path", ["/lotteries/x/complete", "/queues/x/validate", "/queues/complete", "/"])
def test_unknown_paths_are_404(sandbox: FanfareSandbox, path: str) -> None:
    response = httpx.post(f"{sandbox.base_url}{path}", json={"consumerId": "c"})

    assert response.status_code == 404


# --- faults ---------------------------------------------------------------------------------------------


def test_a_404_rule_is_a_permanent_failure_and_completes_nothing(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    sandbox.set_faults(rules=[{"distribution_id": "queue_gone", "status": 404}])

    gone = client.complete_admission(completion(distribution_id="queue_gone"))
    other = client.complete_admission(completion(distribution_id="queue_ok"))

    assert (gone.outcome, gone.status_code) == (CompletionOutcome.PERMANENT, 404)
    assert "Distribution not found" in gone.reason
    assert other.outcome is CompletionOutcome.COMPLETED  # the rule only matched its distribution
    assert [c["distribution_id"] for c in sandbox.completions()] == ["queue_ok"]


def test_a_429_carries_retry_after_and_the_next_attempt_succeeds(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    # Given Fanfare rate-limits the next request only
    sandbox.set_faults(rules=[{"status": 429, "retry_after": 3, "times": 1}])

    # When the consumer tries, then tries again
    limited = client.complete_admission(completion())
    retried = client.complete_admission(completion())

    # Then the first result tells it how long to wait, and the retry completes the admission
    assert (limited.outcome, limited.status_code, limited.retry_after_seconds) == (
        CompletionOutcome.RETRYABLE,
        429,
        3.0,
    )
    assert retried.outcome is CompletionOutcome.COMPLETED
    assert sandbox.faults()["rules"][0]["times"] == 0  # used up
    assert len(sandbox.completions()) == 1


def test_an_error_rate_of_one_makes_every_call_retryable(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    sandbox.set_faults(error_rate=1.0, seed=7)

    results = [client.complete_admission(completion(consumer_id=f"cons_{n}")) for n in range(5)]

    assert {result.outcome for result in results} == {CompletionOutcome.RETRYABLE}
    assert {result.status_code for result in results} <= {500, 502, 503}
    assert sandbox.completions() == []


def test_an_injected_401_is_flagged_as_misconfiguration(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    sandbox.set_faults(rules=[{"status": 401}])

    result = client.complete_admission(completion())

    assert (result.outcome, result.misconfiguration) == (CompletionOutcome.RETRYABLE, True)


def test_a_held_request_times_out_as_retryable_and_stop_is_prompt(make_client: ClientFactory) -> None:
    # Given a sandbox that holds every request far longer than the client waits
    sandbox = FanfareSandbox(org_id=ORG_ID, secret_key=SECRET, hold_seconds=60)
    sandbox.start()
    sandbox.set_faults(rules=[{"timeout": True}])
    credentials = FanfareCredentials(org_id=ORG_ID, secret_key=SECRET)
    with FanfareClient(
        base_url=sandbox.base_url, credentials=credentials, timeouts=FanfareTimeouts(read=0.2)
    ) as client:
        # When completing
        result = client.complete_admission(completion())

    # Then the client reports a retryable timeout and nothing was completed
    assert (result.outcome, result.status_code) == (CompletionOutcome.RETRYABLE, None)
    assert "ReadTimeout" in result.reason
    assert sandbox.completions() == []
    assert [(r["status"], r["fault"]) for r in sandbox.requests()] == [(None, "timeout")]

    # And stopping does not wait for the 60 s hold to run out (the bound is a hang detector, not a timing)
    stopper = threading.Thread(target=sandbox.stop)
    stopper.start()
    stopper.join(timeout=10)
    assert not stopper.is_alive()


def test_latency_beyond_the_read_timeout_is_retryable(
    sandbox: FanfareSandbox, make_client: ClientFactory
) -> None:
    sandbox.set_faults(latency_ms=5_000)

    result = make_client(timeouts=FanfareTimeouts(read=0.2)).complete_admission(completion())

    assert (result.outcome, result.status_code) == (CompletionOutcome.RETRYABLE, None)


def test_a_lost_answer_after_completion_is_retried_into_already_completed(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    # Given Fanfare completes the admission but the answer is lost once
    sandbox.set_faults(rules=[{"status": 500, "fail_after_complete": True, "times": 1}])

    # When the consumer sees the failure and retries
    first = client.complete_admission(completion())
    retry = client.complete_admission(completion())

    # Then the failure is retryable, the retry counts as success, and there is exactly one completion
    assert (first.outcome, first.status_code) == (CompletionOutcome.RETRYABLE, 500)
    assert retry.outcome is CompletionOutcome.ALREADY_COMPLETED
    assert len(sandbox.completions()) == 1
    assert [r["fault"] for r in sandbox.requests()] == ["fail_after_complete:rule:500", None]


def test_a_custom_rule_body_reaches_the_classifier(sandbox: FanfareSandbox, client: FanfareClient) -> None:
    # The real API's "already completed" answer is undocumented; a 400 with the guide's wording must count.
    sandbox.set_faults(rules=[{"status": 400, "body": {"error": "Admission already completed"}}])

    result = client.complete_admission(completion())

    assert (result.outcome, result.status_code) == (CompletionOutcome.ALREADY_COMPLETED, 400)


# --- records --------------------------------------------------------------------------------------------


def test_recorded_requests_never_contain_the_secret(
    sandbox: FanfareSandbox, make_client: ClientFactory
) -> None:
    make_client(auth_style="headers").complete_admission(completion(consumer_id="cons_h"))
    make_client(auth_style="bearer").complete_admission(completion(consumer_id="cons_b"))
    make_client(secret_key=SECRET + "x").complete_admission(completion(consumer_id="cons_x"))

    records = sandbox.requests()
    over_http = httpx.get(f"{sandbox.base_url}/_sandbox/requests").text

    assert [r["status"] for r in records] == [200, 200, 401]
    assert records[0]["headers"]["X-Organization-Id"] == ORG_ID
    assert records[0]["headers"]["X-Secret-Key"] == "[REDACTED]"
    assert records[1]["headers"]["Authorization"] == "[REDACTED]"
    assert records[0]["body"]["consumerId"] == "cons_h"
    assert SECRET not in json.dumps(records)
    assert SECRET not in over_http
    assert SECRET not in repr(sandbox)


def test_ten_concurrent_completions_all_succeed_once_each(
    sandbox: FanfareSandbox, client: FanfareClient
) -> None:
    # Given one client shared by ten threads, as the consumer completes an SQS batch
    requests = [completion(consumer_id=f"cons_{n}") for n in range(10)]

    # When all ten complete at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(client.complete_admission, requests))

    # Then every one succeeded and Fanfare recorded each consumer exactly once
    assert [r.outcome for r in results] == [CompletionOutcome.COMPLETED] * 10
    assert sorted(c["consumer_id"] for c in sandbox.completions()) == sorted(f"cons_{n}" for n in range(10))
    assert len(sandbox.requests()) == 10


def test_concurrent_duplicates_complete_exactly_once(sandbox: FanfareSandbox, client: FanfareClient) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: client.complete_admission(completion()), range(10)))

    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["already_completed"] * 9 + ["completed"]
    assert len(sandbox.completions()) == 1


# --- the control API over HTTP --------------------------------------------------------------------------


def test_control_api_sets_inspects_and_resets(sandbox: FanfareSandbox, client: FanfareClient) -> None:
    control = f"{sandbox.base_url}/_sandbox"

    put = httpx.put(f"{control}/faults", json={"rules": [{"status": 503, "times": 1, "retry_after": 2}]})
    faulted = client.complete_admission(completion())
    completed = client.complete_admission(completion())

    assert put.status_code == 200
    assert (faulted.outcome, faulted.status_code, faulted.retry_after_seconds) == (
        CompletionOutcome.RETRYABLE,
        503,
        2.0,
    )
    assert completed.outcome is CompletionOutcome.COMPLETED
    assert len(httpx.get(f"{control}/completions").json()["completions"]) == 1
    assert httpx.get(f"{control}/faults").json()["rules"][0]["times"] == 0

    assert httpx.post(f"{control}/reset").status_code == 200
    assert httpx.get(f"{control}/requests").json() == {"requests": []}
    assert httpx.get(f"{control}/completions").json() == {"completions": []}
    assert httpx.get(f"{control}/faults").json()["rules"] == []
    assert client.complete_admission(completion()).outcome is CompletionOutcome.COMPLETED  # forgotten


@pytest.mark.parametrize(
    "spec",
    [
        {"error_rate": 1.5},
        {"rules": [{"status": 42}]},
        {"rules": [{"retry-after": 3}]},
        {"rules": [{"times": True}]},
        {"latency": 100},
        [1, 2],
    ],
)
def test_control_api_refuses_a_fault_document_it_does_not_understand(
    sandbox: FanfareSandbox, spec: object
) -> None:
    response = httpx.put(f"{sandbox.base_url}/_sandbox/faults", json=spec)

    assert response.status_code == 400
    assert sandbox.faults()["rules"] == []


def test_control_api_switches_the_repeat_answer(sandbox: FanfareSandbox, client: FanfareClient) -> None:
    response = httpx.put(f"{sandbox.base_url}/_sandbox/settings", json={"repeat_completion": "ok"})
    client.complete_admission(completion())

    repeat = client.complete_admission(completion())

    assert response.json() == {"repeat_completion": "ok"}
    assert (repeat.outcome, repeat.status_code) == (CompletionOutcome.COMPLETED, 200)


def test_control_requests_are_not_recorded_as_fanfare_traffic(sandbox: FanfareSandbox) -> None:
    httpx.get(f"{sandbox.base_url}/_sandbox/health")
    httpx.get(f"{sandbox.base_url}/_sandbox/faults")

    assert sandbox.requests() == []


# --- the command line -----------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
def test_module_entry_point_serves_until_interrupted() -> None:
    # Given the sandbox started the way `make run` starts it
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "cli"), str(REPO_ROOT / "layers" / "common")]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fanfare_sync_cli.sandbox",
            "--port",
            "0",
            "--org-id",
            ORG_ID,
            "--secret-key",
            SECRET,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Fanfare sandbox listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1].strip()

        # When a completion is sent to it
        response = httpx.post(
            f"{base_url}/queues/q1/complete",
            json={"consumerId": "c1"},
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        assert response.json()["status"] == "COMPLETED"

        # Then Ctrl-C stops it cleanly, and its output never showed the key
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert SECRET not in line + stdout + stderr

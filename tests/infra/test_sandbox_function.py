"""The deployable Fanfare sandbox (FanfareSandboxFunction): its build artifact, and its Lambda handler on a
function-URL event, with its state in the template's FanfareSandboxTable and its credentials in the
stack's Fanfare credentials secret, both in moto."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack, provision
from fanfare_sync_cli.local.template import PROJECT_ROOT
from fanfare_sync_cli.sandbox import lambda_handler as sandbox_function
from fanfare_sync_cli.sandbox.dynamodb_store import DynamoDBStore
from fanfare_sync_cli.sandbox.lambda_handler import SecretCredentials, build_app, handle_event
from fanfare_sync_cli.sandbox.server import SandboxApp

ORG_ID = "org_staging"
SECRET_KEY = "sk_test_staging_5d1e"
SHIPPED = [
    "fanfare_sync_cli/__init__.py",
    "fanfare_sync_cli/sandbox/__init__.py",
    "fanfare_sync_cli/sandbox/dynamodb_store.py",
    "fanfare_sync_cli/sandbox/lambda_handler.py",
    "fanfare_sync_cli/sandbox/server.py",
]
_stacks = iter(range(1, 1000))


# ---------------------------------------------------------------------------------------------- the build
def test_makefile_ships_the_sandbox_package_alone_and_it_imports_from_there(tmp_path: Path) -> None:
    # As `sam build` does: a scratch copy of the CodeUri folder, then `make build-<LogicalId>` in it.
    scratch = tmp_path / "scratch"
    shutil.copytree(PROJECT_ROOT / "cli", scratch, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    subprocess.run(
        ["make", "--no-print-directory", "build-FanfareSandboxFunction", f"ARTIFACTS_DIR={artifacts}"],
        cwd=scratch,
        check=True,
        capture_output=True,
    )
    shipped = sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.is_file())
    assert shipped == SHIPPED

    # The artifact's package shadows the repo's, so an import of anything not shipped would fail here.
    probe = (
        "import fanfare_sync_cli, fanfare_sync_cli.sandbox.lambda_handler as handler; "
        "print(fanfare_sync_cli.__file__); print(handler.lambda_handler.__module__)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(artifacts), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    package_file, module = completed.stdout.split()
    assert package_file == str(artifacts / "fanfare_sync_cli" / "__init__.py")
    assert module == "fanfare_sync_cli.sandbox.lambda_handler"


# ---------------------------------------------------------------------------------------------- the handler
@pytest.fixture
def sandbox_stack(moto_server: MotoServer, template: dict[str, Any]) -> ProvisionedStack:
    """The template's resources with DeployFanfareSandbox=true: the sandbox table and the credentials."""
    clients = {name: moto_server.client(name) for name in ("sqs", "dynamodb", "secretsmanager", "sns")}
    credentials = json.dumps({"orgId": ORG_ID, "secretKey": SECRET_KEY})
    return provision(
        clients,
        template,
        f"sandbox-fn-{next(_stacks)}",
        LOCAL_REGION,
        {"FanfareCredentialsSecret": credentials},
        {"DeployFanfareSandbox": "true"},
    )


@pytest.fixture
def app(sandbox_stack: ProvisionedStack, monkeypatch: pytest.MonkeyPatch) -> SandboxApp:
    monkeypatch.setenv("SANDBOX_TABLE", sandbox_stack.ref("FanfareSandboxTable"))
    monkeypatch.setenv("FANFARE_CREDENTIALS_SECRET_ARN", sandbox_stack.ref("FanfareCredentialsSecret"))
    return build_app()


def url_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A Lambda function URL event (payload format 2.0), as AWS sends it: lower-case header names."""
    raw = "" if body is None else json.dumps(body)
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {name.lower(): value for name, value in (headers or {}).items()},
        "requestContext": {"http": {"method": method, "path": path}},
        "body": base64.b64encode(raw.encode()).decode() if base64_body else raw,
        "isBase64Encoded": base64_body,
    }


AUTH = {"X-Organization-Id": ORG_ID, "X-Secret-Key": SECRET_KEY}


def complete(
    app: SandboxApp, consumer: str = "cons_1", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body = {"consumerId": consumer, "metadata": {"orderId": "1001", "orderAmount": "10.00"}}
    return handle_event(
        app, url_event("POST", "/queues/queue_1/complete", body, AUTH if headers is None else headers)
    )


def control(
    app: SandboxApp, method: str, path: str, body: Any = None, *, auth: bool = True
) -> dict[str, Any]:
    return handle_event(app, url_event(method, path, body, AUTH if auth else {}))


def payload(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_completes_once_with_the_stack_credentials_and_records_it(app: SandboxApp) -> None:
    first = complete(app)
    repeat = complete(app)
    bearer = complete(app, headers={"Authorization": f"Bearer {SECRET_KEY}"})

    assert first["statusCode"] == 200
    assert payload(first)["status"] == "COMPLETED"
    assert first["headers"]["Content-Type"] == "application/json"
    assert (repeat["statusCode"], payload(repeat)["error"]) == (409, "already_completed")
    assert bearer["statusCode"] == 409  # the other auth style is accepted too
    [completion] = payload(control(app, "GET", "/_sandbox/completions"))["completions"]
    assert (completion["distribution_type"], completion["consumer_id"]) == ("queue", "cons_1")
    assert completion["metadata"] == {"orderId": "1001", "orderAmount": "10.00"}
    statuses = [r["status"] for r in payload(control(app, "GET", "/_sandbox/requests"))["requests"]]
    assert statuses == [200, 409, 409]


def test_wrong_credentials_are_401_and_never_complete(app: SandboxApp) -> None:
    response = complete(app, headers={"X-Organization-Id": ORG_ID, "X-Secret-Key": "sk_guess"})

    assert response["statusCode"] == 401
    assert payload(control(app, "GET", "/_sandbox/completions"))["completions"] == []


def test_the_public_control_api_needs_the_credentials_except_health(app: SandboxApp) -> None:
    assert control(app, "GET", "/_sandbox/health", auth=False)["statusCode"] == 200
    for method, path in [
        ("GET", "/_sandbox/completions"),
        ("POST", "/_sandbox/reset"),
        ("PUT", "/_sandbox/faults"),
    ]:
        assert control(app, method, path, {}, auth=False)["statusCode"] == 401, path
    assert control(app, "GET", "/_sandbox/completions")["statusCode"] == 200


def test_a_secret_key_never_appears_in_records_or_logs(
    app: SandboxApp, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"consumerId": "cons_2", "metadata": {"note": f"key {SECRET_KEY}"}}
    with caplog.at_level("INFO"):
        handle_event(app, url_event("POST", "/queues/queue_2/complete", body, AUTH))
        handle_event(app, url_event("GET", f"/keys/{SECRET_KEY}", None, AUTH))  # a path carrying the key
    recorded = json.dumps(payload(control(app, "GET", "/_sandbox/requests")))
    completions = json.dumps(payload(control(app, "GET", "/_sandbox/completions")))

    assert SECRET_KEY not in recorded + completions + caplog.text
    assert "[REDACTED]" in recorded


def test_a_base64_body_is_decoded(app: SandboxApp) -> None:
    event = url_event("POST", "/draws/draw_1/complete", {"consumerId": "cons_b64"}, AUTH, base64_body=True)

    assert handle_event(app, event)["statusCode"] == 200


def test_state_is_shared_between_instances(sandbox_stack: ProvisionedStack, app: SandboxApp) -> None:
    # Given a second instance of the function (Lambda runs one per concurrent request)
    other = build_app()
    control(app, "PUT", "/_sandbox/faults", {"rules": [{"status": 503, "times": 1, "retry_after": 2}]})

    # When each instance serves one request
    faulted = complete(other)
    completed = complete(app)

    # Then the one-time fault was used up once, and both see the one completion
    assert (faulted["statusCode"], faulted["headers"]["Retry-After"]) == (503, "2")
    assert completed["statusCode"] == 200
    assert payload(control(other, "GET", "/_sandbox/faults"))["rules"][0]["times"] == 0
    assert len(payload(control(other, "GET", "/_sandbox/completions"))["completions"]) == 1


def test_concurrent_duplicates_on_separate_instances_complete_once(sandbox_stack: ProvisionedStack) -> None:
    apps = [
        SandboxApp(
            DynamoDBStore(sandbox_stack.ref("FanfareSandboxTable"), _client("dynamodb")),
            SecretCredentials(_client("secretsmanager"), sandbox_stack.ref("FanfareCredentialsSecret")),
        )
        for _ in range(6)
    ]
    statuses: list[int] = []
    lock = threading.Lock()

    def send(instance: SandboxApp) -> None:
        status = complete(instance, consumer="cons_race")["statusCode"]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send, args=(instance,)) for instance in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]


def test_timeout_fault_holds_then_answers_504_unrecorded_status(
    sandbox_stack: ProvisionedStack, app: SandboxApp
) -> None:
    waits: list[float] = []
    held = SandboxApp(app.store, app.credentials, hold_seconds=8.0, wait=waits.append)
    control(app, "PUT", "/_sandbox/faults", {"rules": [{"timeout": True, "times": 1}]})

    response = complete(held)

    assert response["statusCode"] == 504  # Lambda cannot hang up; the client gave up long before
    assert waits == [8.0]
    [record] = payload(control(app, "GET", "/_sandbox/requests"))["requests"]
    assert (record["status"], record["fault"]) == (None, "timeout")
    assert payload(control(app, "GET", "/_sandbox/completions"))["completions"] == []


def test_reset_forgets_everything(app: SandboxApp) -> None:
    complete(app)
    control(app, "PUT", "/_sandbox/faults", {"error_rate": 1.0})
    control(app, "PUT", "/_sandbox/settings", {"repeat_completion": "ok"})

    assert control(app, "POST", "/_sandbox/reset")["statusCode"] == 200

    assert payload(control(app, "GET", "/_sandbox/completions")) == {"completions": []}
    assert payload(control(app, "GET", "/_sandbox/requests")) == {"requests": []}
    assert payload(control(app, "GET", "/_sandbox/faults"))["error_rate"] == 0.0
    assert payload(control(app, "GET", "/_sandbox/settings")) == {"repeat_completion": "conflict"}
    assert complete(app)["statusCode"] == 200  # forgotten


def test_a_rotated_key_is_picked_up_and_the_old_one_refused(sandbox_stack: ProvisionedStack) -> None:
    now = [1000.0]
    secret_id = sandbox_stack.ref("FanfareCredentialsSecret")
    credentials = SecretCredentials(_client("secretsmanager"), secret_id, clock=lambda: now[0])
    instance = SandboxApp(
        DynamoDBStore(sandbox_stack.ref("FanfareSandboxTable"), _client("dynamodb")), credentials
    )
    assert complete(instance, consumer="before")["statusCode"] == 200

    # When the operator sets a new key (`fanfare-sync secrets set fanfare`) and the consumer uses it
    rotated = {"orgId": ORG_ID, "secretKey": "sk_test_rotated_77"}
    _client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(rotated))
    now[0] += 11  # past the re-read rate limit
    new_headers = {"X-Organization-Id": ORG_ID, "X-Secret-Key": "sk_test_rotated_77"}

    # Then the new key completes at once, and the old one is refused
    assert complete(instance, consumer="after", headers=new_headers)["statusCode"] == 200
    assert complete(instance, consumer="old", headers=AUTH)["statusCode"] == 401


def test_an_unset_secret_accepts_nothing(sandbox_stack: ProvisionedStack) -> None:
    secret_id = sandbox_stack.ref("FanfareCredentialsSecret")
    _client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString="not json")
    instance = SandboxApp(
        DynamoDBStore(sandbox_stack.ref("FanfareSandboxTable"), _client("dynamodb")),
        SecretCredentials(_client("secretsmanager"), secret_id),
    )

    assert complete(instance, headers={"X-Organization-Id": "", "X-Secret-Key": ""})["statusCode"] == 401
    assert complete(instance, headers={"Authorization": "Bearer "})["statusCode"] == 401


def test_lambda_handler_builds_its_app_once(app: SandboxApp, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[SandboxApp] = []
    real_build: Callable[[], SandboxApp] = sandbox_function.build_app

    def counting_build() -> SandboxApp:
        built.append(real_build())
        return built[-1]

    monkeypatch.setattr(sandbox_function, "_APP", None)
    monkeypatch.setattr(sandbox_function, "build_app", counting_build)
    event = url_event("GET", "/_sandbox/health")

    answers = [sandbox_function.lambda_handler(event, None)["statusCode"] for _ in range(3)]

    assert answers == [200, 200, 200]
    assert len(built) == 1  # the cold start builds it; warm invocations reuse it


def test_an_oversized_body_is_refused(app: SandboxApp) -> None:
    event = url_event("POST", "/queues/q/complete", None, AUTH)
    event["body"] = "x" * (1024 * 1024 + 1)

    assert handle_event(app, event)["statusCode"] == 413


def _client(service: str) -> Any:
    import boto3

    # The session's moto server (tests/conftest.py points AWS_ENDPOINT_URL at it).
    return boto3.client(service, region_name=LOCAL_REGION)

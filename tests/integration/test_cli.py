"""The operator commands (`send`, `orders`, `dlq`) driven against the whole local stack (moto server, worker
processes, the gateway, the queue poller and the Fanfare sandbox), and against "deployed" stacks created
with moto's CloudFormation for the `--stack` resolution."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from fanfare_sync_cli.commands.dlq import dlq
from fanfare_sync_cli.commands.orders import orders
from fanfare_sync_cli.commands.send import send
from fanfare_sync_cli.local.moto_server import LOCAL_REGION
from fanfare_sync_cli.local.stack import LocalSettings, LocalStack
from fanfare_sync_cli.sandbox import RecordedCompletion
from fanfare_sync_cli.targets import STATE_DIR_ENV
from tests.conftest import queue_depth

pytestmark = pytest.mark.slow
_ids = itertools.count(9001)
SHOPIFY_SHOP = "fanfare-demo.myshopify.com"
WOO_SHOP = "shop.example.com"


@click.group()
def cli() -> None:
    """The commands as main.py registers them."""


cli.add_command(send)
cli.add_command(orders)
cli.add_command(dlq)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-state")


@pytest.fixture(scope="module")
def stack(state_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(LocalSettings(port=0, state_dir=state_dir, workers_per_function=1)) as running:
        yield running


Run = Callable[..., Result]


@pytest.fixture
def run(stack: LocalStack, state_dir: Path) -> Run:
    """`fanfare-sync ARGS` against the local stack, which the commands find through its stack.json."""

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env={STATE_DIR_ENV: str(state_dir), **(env or {})})

    return invoke


def new_id() -> str:
    return str(next(_ids))


def completions(stack: LocalStack, distribution_id: str) -> list[RecordedCompletion]:
    assert stack.sandbox is not None
    return [c for c in stack.sandbox.completions() if c["distribution_id"] == distribution_id]


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def assert_ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def assert_one_line_error(result: Result, *expected: str) -> str:
    """Exit code 1, one `Error: ...` line on stderr, no traceback: a ClickException, nothing unexpected."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    assert "Traceback" not in result.output
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def wait_for_dlq(run: Run, order_id: str) -> str:
    def listed() -> str | None:
        result = run("dlq", "list", "--filter", f"order={order_id}")
        return result.stdout if result.exit_code == 0 else None

    output: str = wait_until(listed, f"order {order_id} in the DLQ")
    return output


# ------------------------------------------------------------------------------------------------ send
def test_send_shopify_order_completes_and_orders_show_prints_its_history(stack: LocalStack, run: Run) -> None:
    order_id = new_id()
    distribution = f"queue_{order_id}"
    output = assert_ok(
        run(
            "send",
            "shopify",
            "--order-id",
            order_id,
            "--distribution-id",
            distribution,
            "--admissions",
            "2",
            "--amount",
            "250.00",
            "--currency",
            "EUR",
        )
    )
    assert f"POST {stack.url('/webhooks/shopify')}" in output
    assert '1/1  200 OK  {"status":"queued","detail":"queued"}' in output
    assert f"admission (line item): queue {distribution}_2 consumer cons_{order_id}" in output

    wait_until(
        lambda: len(completions(stack, distribution) + completions(stack, f"{distribution}_2")) == 2,
        "both admissions completed",
    )
    [first] = completions(stack, distribution)
    assert first["consumer_id"] == f"cons_{order_id}"
    assert first["metadata"] is not None
    assert (first["metadata"]["orderAmount"], first["metadata"]["currency"]) == ("250.00", "EUR")

    shown = assert_ok(run("orders", "show", order_id))
    assert shown.splitlines()[0] == f"order {order_id}  shopify  {SHOPIFY_SHOP}"
    assert "synced at" in shown
    assert "250.00 EUR" in shown
    assert "received      " in shown  # the receipt is a field of the order item, not an event item
    assert "history (0 events)" in shown  # nothing went wrong: the order item says it all
    admissions = shown[shown.index("admissions (2)") : shown.index("history")].splitlines()[2:]
    assert len(admissions) == 2
    assert all("completed" in line and "HTTP 200 in" in line and "(attempt 1)" in line for line in admissions)

    as_json = json.loads(assert_ok(run("orders", "show", order_id, "--shop", SHOPIFY_SHOP, "--json")))
    assert as_json["order"]["syncStatus"] == "synced"
    assert [a["state"] for a in as_json["order"]["admissions"]] == ["completed", "completed"]
    assert as_json["events"] == []


def test_duplicate_deliveries_complete_the_admission_once(stack: LocalStack, run: Run) -> None:
    order_id = new_id()
    distribution = f"draw_{order_id}"
    output = assert_ok(
        run(
            "send",
            "woocommerce",
            "--order-id",
            order_id,
            "--status",
            "completed",
            "--distribution-type",
            "draw",
            "--distribution-id",
            distribution,
            "--duplicates",
            "2",
        )
    )
    statuses = [
        line.split()[1] for line in output.splitlines() if line.strip().startswith(("1/3", "2/3", "3/3"))
    ]
    assert statuses == ["200", "200", "200"]
    assert "sent 3 times" in output

    wait_until(lambda: completions(stack, distribution), "the completion")
    assert stack.resources is not None
    queue_url = stack.resources.ref("CompletionQueue")
    sqs = stack.moto.client("sqs")
    wait_until(lambda: queue_depth(sqs, queue_url) == 0, "the three copies to be consumed")
    assert len(completions(stack, distribution)) == 1
    assert stack.sandbox is not None
    calls = [r for r in stack.sandbox.requests() if f"/draws/{distribution}/" in r["path"]]
    assert len(calls) == 1, "the copies must not reach Fanfare at all"


def test_bad_signature_prints_401_exits_0_unless_expect_says_otherwise(stack: LocalStack, run: Run) -> None:
    order_id = new_id()
    output = assert_ok(run("send", "shopify", "--order-id", order_id, "--bad-signature"))
    assert '1/1  401 Unauthorized  {"status":"unauthorized","detail":"invalid signature"}' in output

    assert_ok(run("send", "shopify", "--order-id", order_id, "--bad-signature", "--expect", "401"))
    assert_one_line_error(
        run("send", "shopify", "--order-id", order_id, "--bad-signature", "--expect", "200"),
        "expected HTTP 200 for every delivery, got [401]",
    )
    assert_one_line_error(run("orders", "show", order_id), f"order {order_id} not found")


def test_woocommerce_ping_is_answered_200(run: Run) -> None:
    output = assert_ok(run("send", "woocommerce", "--ping", "--expect", "200"))
    assert '{"status":"ping","detail":"pong"}' in output


def test_explicit_secret_is_used_for_signing(run: Run) -> None:
    output = assert_ok(run("send", "shopify", "--secret", "not-the-configured-one"))
    assert "401 Unauthorized" in output


# ------------------------------------------------------------------------------------- dlq and redrive
def test_poisoned_order_is_listed_in_the_dlq_and_redriven_once_the_cause_is_fixed(
    stack: LocalStack, run: Run
) -> None:
    assert stack.sandbox is not None
    assert stack.resources is not None
    order_id = new_id()
    distribution = f"queue_{order_id}"
    # A message the redrive policy moved (a consumer crash): no failureReason, and not ours to move.
    sqs = stack.moto.client("sqs")
    dlq_url = stack.resources.ref("CompletionDLQ")
    crashed = {
        "v": 1,
        "kind": "order.paid",
        "platform": "shopify",
        "shop": "other.myshopify.com",
        "orderId": f"crashed-{order_id}",
        "topic": "orders/paid",
        "receivedAt": "2026-11-27T15:00:05Z",
    }
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps(crashed))
    stack.sandbox.set_faults(rules=[{"distribution_id": distribution, "status": 404}])
    try:
        assert_ok(run("send", "shopify", "--order-id", order_id, "--distribution-id", distribution))
        listed = wait_for_dlq(run, order_id)
    finally:
        stack.sandbox.clear_faults()

    [row] = [line for line in listed.splitlines() if f" {order_id} " in line]
    assert row.split()[1:6] == [order_id, "order.paid", "shopify", SHOPIFY_SHOP, "1"]
    assert "HTTP 404" in row
    everything = assert_ok(run("dlq", "list"))
    [crash_row] = [line for line in everything.splitlines() if f"crashed-{order_id}" in line]
    assert "redrive policy" in crash_row
    assert crash_row.split()[5] == "-"  # no attempts attribute
    as_json = json.loads(assert_ok(run("dlq", "list", "--filter", f"order={order_id}", "--json")))
    assert [(m["orderId"], m["attempts"]) for m in as_json] == [(order_id, 1)]
    assert "404" in as_json[0]["failureReason"]

    shown = assert_ok(run("orders", "show", order_id))
    assert "failed at" in shown
    assert "fanfare_sync_failed" in shown
    assert order_id in assert_ok(run("orders", "list", "--status", "failed"))
    assert order_id not in assert_ok(run("orders", "list", "--status", "pending"))

    dry = assert_ok(run("dlq", "redrive", "--filter", f"order={order_id}", "--dry-run"))
    assert "would move 1 of" in dry
    assert order_id in wait_for_dlq(run, order_id), "a dry run moves nothing"
    assert completions(stack, distribution) == []

    moved = assert_ok(run("dlq", "redrive", "--filter", f"order={order_id}", "--filter", "reason=http 404"))
    assert moved.startswith("moved 1 message to the completion queue")
    wait_until(lambda: completions(stack, distribution), "the redriven order's completion")
    wait_until(lambda: "synced at" in run("orders", "show", order_id).stdout, "the order to be synced")
    assert_one_line_error(run("dlq", "list", "--filter", f"order={order_id}"), "no DLQ message matches")
    # The other message was not touched, and is visible again (a listing hides nothing for long).
    assert f"crashed-{order_id}" in assert_ok(run("dlq", "list", "--filter", "reason=redrive policy"))
    time.sleep(1)  # one more poll cycle: a second copy, had there been one, would be completed by now
    assert len(completions(stack, distribution)) == 1

    assert_one_line_error(
        run("dlq", "redrive", "--filter", "order=no-such-order"), "no DLQ message matches order=no-such-order"
    )


def test_stale_and_pending_orders_are_listed_from_the_unsynced_index(stack: LocalStack, run: Run) -> None:
    assert stack.sandbox is not None
    order_id = new_id()
    distribution = f"auction_{order_id}"
    stack.sandbox.set_faults(rules=[{"distribution_id": distribution, "status": 503}])
    try:
        assert_ok(
            run(
                "send",
                "shopify",
                "--order-id",
                order_id,
                "--distribution-type",
                "auction",
                "--distribution-id",
                distribution,
            )
        )
        pending = wait_until(
            lambda: order_id in (out := run("orders", "list", "--status", "pending").stdout) and out,
            "the order to be pending",
        )
        [row] = [line for line in pending.splitlines() if line.startswith(order_id)]
        assert row.split()[3] == "pending"
        wait_until(lambda: "fanfare_retry_scheduled" in run("orders", "show", order_id).stdout, "a retry")
        time.sleep(1.2)
        stale = assert_ok(run("orders", "stale", "--older-than", "1s"))
        assert any(line.startswith(order_id) and " pending " in line for line in stale.splitlines())
        fresh = assert_ok(run("orders", "stale", "--older-than", "1h"))
        assert order_id not in fresh
        assert "no order unsynced for longer than 1h" in fresh
        assert order_id not in assert_ok(run("orders", "list", "--status", "synced", "--limit", "1000"))
    finally:
        stack.sandbox.clear_faults()


def test_order_id_in_two_shops_needs_platform_or_shop(stack: LocalStack, run: Run) -> None:
    order_id = new_id()
    assert_ok(run("send", "shopify", "--order-id", order_id, "--distribution-id", f"queue_s{order_id}"))
    assert_ok(run("send", "woocommerce", "--order-id", order_id, "--distribution-id", f"queue_w{order_id}"))
    wait_until(lambda: completions(stack, f"queue_w{order_id}"), "the WooCommerce order")
    assert_one_line_error(run("orders", "show", order_id), "exists more than once", "--platform/--shop")
    shown = assert_ok(run("orders", "show", order_id, "--platform", "woocommerce"))
    assert shown.splitlines()[0] == f"order {order_id}  woocommerce  {WOO_SHOP}"
    assert order_id in assert_ok(run("orders", "list", "--status", "synced", "--limit", "1000"))


# -------------------------------------------------------------------------------------- error paths
@pytest.mark.parametrize(
    "args",
    [
        ("send", "shopify"),
        ("send", "woocommerce", "--ping"),
        ("orders", "show", "1"),
        ("orders", "list"),
        ("orders", "stale"),
        ("dlq", "list"),
        ("dlq", "redrive"),
    ],
)
def test_every_command_says_when_the_local_stack_is_not_running(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = CliRunner().invoke(cli, list(args), env={STATE_DIR_ENV: str(tmp_path)})
    assert_one_line_error(result, "the local stack is not running", "make run")


def test_a_stack_json_left_by_a_killed_run_is_not_taken_for_a_running_stack(tmp_path: Path) -> None:
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    dead_pid = int(exited.stdout)
    (tmp_path / "stack.json").write_text(
        json.dumps({"pid": dead_pid, "region": LOCAL_REGION}), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["dlq", "list"], env={STATE_DIR_ENV: str(tmp_path)})
    assert_one_line_error(result, "not running", f"process {dead_pid}")


def test_send_with_url_and_no_local_stack_signs_with_the_documented_secret(
    stack: LocalStack, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        ["send", "shopify", "--url", stack.url("/webhooks/shopify"), "--expect", "200"],
        env={STATE_DIR_ENV: str(tmp_path)},
    )
    assert "200 OK" in assert_ok(result)


# ---------------------------------------------------------------------------------- deployed stacks
@pytest.fixture
def aws_env(stack: LocalStack, tmp_path: Path) -> dict[str, str | None]:
    """Standard AWS configuration pointing at moto: what `--stack` reads, with nothing from this machine."""
    return {
        "AWS_ENDPOINT_URL": stack.moto.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": None,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        STATE_DIR_ENV: str(tmp_path / "no-local-stack"),
    }


def create_cfn_stack(stack: LocalStack, name: str, template: dict[str, Any], **parameters: str) -> None:
    stack.moto.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )


@pytest.fixture
def outputs_stack(stack: LocalStack) -> str:
    """A "deployed" stack whose Outputs (template.yaml's names) point at the local stack's resources."""
    assert stack.resources is not None
    values = {
        "ShopifyWebhookUrl": stack.url("/webhooks/shopify"),
        "WooCommerceWebhookUrl": stack.url("/webhooks/woocommerce"),
        "CompletionQueueUrl": stack.resources.ref("CompletionQueue"),
        "CompletionDLQUrl": stack.resources.ref("CompletionDLQ"),
        "OrdersTableName": stack.resources.ref("OrdersTable"),
        "ShopifyWebhookSecretArn": stack.resources.ref("ShopifyWebhookSecret"),
        "WooCommerceWebhookSecretArn": stack.resources.ref("WooCommerceWebhookSecret"),
    }
    name = f"deployed-{new_id()}"
    template = {
        "Parameters": {key: {"Type": "String"} for key in values},
        # moto needs one resource; the outputs are what the CLI reads.
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-x"}}},
        "Outputs": {key: {"Value": {"Ref": key}} for key in values},
    }
    create_cfn_stack(stack, name, template, **values)
    return name


def test_stack_outputs_route_send_orders_and_dlq_to_the_deployed_stack(
    stack: LocalStack, outputs_stack: str, aws_env: dict[str, str | None]
) -> None:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--stack", outputs_stack], env=aws_env)

    order_id = new_id()
    distribution = f"timed_release_{order_id}"
    # No --secret: it is read from the stack's secret in Secrets Manager (ShopifyWebhookSecretArn).
    output = assert_ok(
        run(
            "send",
            "shopify",
            "--order-id",
            order_id,
            "--distribution-type",
            "timed_release",
            "--distribution-id",
            distribution,
            "--expect",
            "200",
        )
    )
    assert f"POST {stack.url('/webhooks/shopify')}" in output
    wait_until(lambda: completions(stack, distribution), "the completion")

    assert_one_line_error(run("orders", "show", order_id), "--shop is required with --stack", "--scan")
    wait_until(
        lambda: "synced at" in run("orders", "show", order_id, "--shop", SHOPIFY_SHOP).stdout, "synced"
    )
    assert "synced at" in assert_ok(run("orders", "show", order_id, "--scan"))
    woo = assert_ok(run("send", "woocommerce", "--order-id", new_id(), "--expect", "200"))
    assert f"POST {stack.url('/webhooks/woocommerce')}" in woo


@pytest.fixture
def resources_stack(stack: LocalStack) -> dict[str, str]:
    """A "deployed" stack with real queues and no queue outputs: found through its resources."""
    name = f"older-{new_id()}"
    secret = stack.moto.client("secretsmanager").create_secret(
        Name=f"{name}/shopify-webhook-secret", SecretString=json.dumps(["rotated-elsewhere", "second"])
    )
    template = {
        "Parameters": {"Url": {"Type": "String"}, "Secret": {"Type": "String"}},
        "Resources": {
            "CompletionDLQ": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-dlq"}},
            "CompletionQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-queue"}},
        },
        "Outputs": {
            "ShopifyWebhookUrl": {"Value": {"Ref": "Url"}},
            "ShopifyWebhookSecretArn": {"Value": {"Ref": "Secret"}},
        },
    }
    create_cfn_stack(stack, name, template, Url=stack.url("/webhooks/shopify"), Secret=secret["ARN"])
    sqs = stack.moto.client("sqs")
    return {
        "name": name,
        "dlq": sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"],
        "queue": sqs.get_queue_url(QueueName=f"{name}-queue")["QueueUrl"],
    }


def test_resources_are_found_without_outputs_and_redrive_works_without_move_tasks(
    stack: LocalStack, resources_stack: dict[str, str], aws_env: dict[str, str | None]
) -> None:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--stack", resources_stack["name"]], env=aws_env)

    assert_one_line_error(run("dlq", "list"), "is empty")
    assert_one_line_error(run("dlq", "redrive"), "is empty", "nothing to redrive")
    sqs = stack.moto.client("sqs")
    bodies = [
        json.dumps({"orderId": f"o{i}", "shop": "s", "platform": "shopify", "kind": "order.paid"})
        for i in range(12)
    ]
    for body in bodies:
        sqs.send_message(
            QueueUrl=resources_stack["dlq"],
            MessageBody=body,
            MessageAttributes={
                "failureReason": {"DataType": "String", "StringValue": "HTTP 404: not_found"},
                "attempts": {"DataType": "Number", "StringValue": "1"},
            },
        )
    listed = assert_ok(run("dlq", "list"))
    assert listed.startswith(f"12 messages in the DLQ of stack {resources_stack['name']} ({LOCAL_REGION})")

    # No filter, a deployed stack: StartMessageMoveTask first; moto lacks it, so the manual move runs.
    result = run("dlq", "redrive")
    assert_ok(result)
    assert "StartMessageMoveTask unavailable" in result.stderr
    assert result.stdout.startswith("moved 12 messages to the completion queue; 0 left in the DLQ")
    moved = []
    while batch := sqs.receive_message(QueueUrl=resources_stack["queue"], MaxNumberOfMessages=10).get(
        "Messages"
    ):
        moved += [m["Body"] for m in batch]
    assert sorted(moved) == sorted(bodies)
    assert queue_depth(sqs, resources_stack["dlq"]) == 0

    # A secret holding a rotation list: the first entry signs, and this gateway's secret is not it.
    sent = assert_ok(run("send", "shopify", "--expect", "401"))
    assert "401 Unauthorized" in sent
    assert_one_line_error(run("orders", "list"), "has no OrdersTable", "OrdersTableName")
    assert_one_line_error(run("send", "woocommerce"), "has no woocommerce webhook URL")


def test_missing_stack_credentials_and_region_are_one_line_errors(
    aws_env: dict[str, str | None],
) -> None:
    def run(*args: str, **env: str | None) -> Result:
        return CliRunner().invoke(cli, list(args), env={**aws_env, **env})

    assert_one_line_error(
        run("dlq", "list", "--stack", "no-such-stack"), "stack no-such-stack does not exist in"
    )
    assert_one_line_error(
        run(
            "orders",
            "list",
            "--stack",
            "any",
            AWS_ACCESS_KEY_ID=None,
            AWS_SECRET_ACCESS_KEY=None,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONTAINER_CREDENTIALS_FULL_URI=None,
            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=None,
            AWS_WEB_IDENTITY_TOKEN_FILE=None,
        ),
        "no AWS credentials found",
    )
    assert_one_line_error(run("dlq", "list", "--stack", "any", AWS_REGION=None), "no AWS region configured")
    assert_one_line_error(run("dlq", "list", "--stack", "any", "--profile", "nobody"), "profile (nobody)")

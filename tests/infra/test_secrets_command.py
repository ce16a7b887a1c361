"""`fanfare-sync secrets set`: values from a hidden prompt or stdin into the stack's secrets (the local
stack's in moto, or a "deployed" stack found through moto's CloudFormation outputs), never echoed, and
ready for rotation."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import click
import pytest
from aws_lambda_powertools.utilities import parameters
from click.testing import CliRunner, Result

from fanfare_sync.logic.verify_signature import parse_accepted_secrets
from fanfare_sync_cli.commands.secrets import secrets, set_secret
from fanfare_sync_cli.local.gateway import build_http_api_event
from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack
from fanfare_sync_cli.samples import SampleOrder, shopify_headers, shopify_order, to_body
from fanfare_sync_cli.targets import OUTPUT_FOR_RESOURCE, STATE_DIR_ENV

NEW_SECRET = "shpss_new_9c1f0e77ab"
_stacks = itertools.count(1)


@pytest.fixture
def local_stack_state(
    aws_stack: ProvisionedStack, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ProvisionedStack:
    """What `make run` writes to .local/stack.json, pointing at the session's moto server."""
    state = {
        "pid": os.getpid(),
        "awsEndpointUrl": moto_server.endpoint_url,
        "region": LOCAL_REGION,
        "gatewayUrl": "http://127.0.0.1:9",
        "stackName": aws_stack.stack_name,
        "resources": {name: resource.ref for name, resource in aws_stack.resources.items()},
    }
    (tmp_path / "stack.json").write_text(json.dumps(state), encoding="utf-8")
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    return aws_stack


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(secrets, ["set", *args], input=stdin, catch_exceptions=False)


def stored(stack: ProvisionedStack, moto_server: MotoServer, logical_id: str) -> str:
    client = moto_server.client("secretsmanager")
    return str(client.get_secret_value(SecretId=stack.ref(logical_id))["SecretString"])


def test_hidden_prompt_sets_the_shopify_secret_without_echoing_it(
    local_stack_state: ProvisionedStack, moto_server: MotoServer
) -> None:
    result = run("shopify", stdin=f"{NEW_SECRET}\n{NEW_SECRET}\n")

    assert result.exit_code == 0, result.output
    assert stored(local_stack_state, moto_server, "ShopifyWebhookSecret") == NEW_SECRET
    assert NEW_SECRET not in result.output
    assert f"set the Shopify webhook signing secret of the local stack ({local_stack_state.stack_name})" in (
        result.output
    )
    assert "now accepting 1 secret\n" in result.output


def test_a_mistyped_confirmation_changes_nothing(
    local_stack_state: ProvisionedStack, moto_server: MotoServer
) -> None:
    before = stored(local_stack_state, moto_server, "ShopifyWebhookSecret")

    # click asks again after a mismatch; input then ends, so the prompt aborts
    result = run("shopify", stdin=f"{NEW_SECRET}\nshpss_typo\n")

    assert result.exit_code != 0
    assert stored(local_stack_state, moto_server, "ShopifyWebhookSecret") == before
    assert NEW_SECRET not in result.output


def test_keep_previous_rotates_and_the_webhook_function_accepts_both(
    local_stack_state: ProvisionedStack, moto_server: MotoServer, load_function: Any, lambda_context: Any
) -> None:
    previous = stored(local_stack_state, moto_server, "ShopifyWebhookSecret")

    rotated = run("shopify", "--from-stdin", "--keep-previous", stdin=f"{NEW_SECRET}\n")

    assert rotated.exit_code == 0, rotated.output
    assert parse_accepted_secrets(stored(local_stack_state, moto_server, "ShopifyWebhookSecret")) == (
        NEW_SECRET,
        previous,
    )
    assert "now accepting 2 secrets, the new one and 1 previous" in rotated.output
    assert NEW_SECRET not in rotated.output
    assert previous not in rotated.output
    # The real handler verifies deliveries signed with either during the rotation ...
    handler = load_function("ShopifyWebhookFunction")
    assert [signed_status(handler, secret, lambda_context) for secret in (NEW_SECRET, previous)] == [200, 200]

    # ... and only the new one once the rotation is finished with a plain set and the functions' cache of
    # the secret has expired (5 minutes; a new container here)
    assert run("shopify", "--from-stdin", stdin=NEW_SECRET).exit_code == 0
    parameters.clear_caches()
    handler = load_function("ShopifyWebhookFunction")
    assert [signed_status(handler, secret, lambda_context) for secret in (NEW_SECRET, previous)] == [200, 401]


def signed_status(handler: Any, secret: str, context: Any) -> int:
    body = to_body(shopify_order(SampleOrder()))
    event = build_http_api_event(
        "POST", "/webhooks/shopify", "", shopify_headers("orders/paid", body, secret), body, "203.0.113.10"
    )
    return int(handler.lambda_handler(event, context)["statusCode"])


def test_a_webhook_secret_that_looks_like_json_is_kept_whole(
    local_stack_state: ProvisionedStack, moto_server: MotoServer
) -> None:
    odd = '["looks", "like", "a list"]'

    assert run("woocommerce", "--from-stdin", stdin=odd).exit_code == 0

    assert parse_accepted_secrets(stored(local_stack_state, moto_server, "WooCommerceWebhookSecret")) == (
        odd,
    )


def test_an_empty_value_is_refused(local_stack_state: ProvisionedStack, moto_server: MotoServer) -> None:
    before = stored(local_stack_state, moto_server, "WooCommerceWebhookSecret")

    result = run("woocommerce", "--from-stdin", stdin="\n")

    assert result.exit_code == 1
    assert "the WooCommerce webhook secret is empty; nothing was changed" in result.output
    assert stored(local_stack_state, moto_server, "WooCommerceWebhookSecret") == before


@pytest.mark.parametrize(
    "stdin",
    [
        '{"orgId": "org_live_1", "secretKey": "sk_live_abc123"}',
        "org_live_1\nsk_live_abc123\n",
    ],
)
def test_fanfare_credentials_from_stdin(
    local_stack_state: ProvisionedStack, moto_server: MotoServer, stdin: str
) -> None:
    result = run("fanfare", "--from-stdin", stdin=stdin)

    assert result.exit_code == 0, result.output
    assert json.loads(stored(local_stack_state, moto_server, "FanfareCredentialsSecret")) == {
        "orgId": "org_live_1",
        "secretKey": "sk_live_abc123",
    }
    assert "sk_live_abc123" not in result.output


def test_fanfare_credentials_from_the_prompts(
    local_stack_state: ProvisionedStack, moto_server: MotoServer
) -> None:
    result = run("fanfare", stdin="org_live_2\nsk_live_prompted\nsk_live_prompted\n")

    assert result.exit_code == 0, result.output
    assert json.loads(stored(local_stack_state, moto_server, "FanfareCredentialsSecret")) == {
        "orgId": "org_live_2",
        "secretKey": "sk_live_prompted",
    }
    assert "sk_live_prompted" not in result.output
    assert "org_live_2" in result.output  # the org id is not secret: its prompt echoes, as typed


@pytest.mark.parametrize("stdin", ['{"orgId": "org"', "only-one-line", '{"orgId": "org", "secretKey": ""}'])
def test_unusable_fanfare_input_changes_nothing_and_is_not_quoted(
    local_stack_state: ProvisionedStack, moto_server: MotoServer, stdin: str
) -> None:
    before = stored(local_stack_state, moto_server, "FanfareCredentialsSecret")

    result = run("fanfare", "--from-stdin", stdin=stdin)

    assert result.exit_code == 1
    assert stdin not in result.output
    assert stored(local_stack_state, moto_server, "FanfareCredentialsSecret") == before


def test_keep_previous_is_refused_for_fanfare(
    local_stack_state: ProvisionedStack, moto_server: MotoServer
) -> None:
    before = stored(local_stack_state, moto_server, "FanfareCredentialsSecret")

    result = run("fanfare", "--from-stdin", "--keep-previous", stdin="org\nsk_live_x\n")

    assert result.exit_code == 2
    assert "Fanfare accepts one secret key at a time" in result.output
    assert stored(local_stack_state, moto_server, "FanfareCredentialsSecret") == before


def test_a_deployed_stack_is_found_by_its_outputs(
    aws_stack: ProvisionedStack, moto_server: MotoServer
) -> None:
    # Given a "deployed" stack whose outputs name the secrets (as template.yaml's do)
    name = f"fanfare-sync-deployed-{next(_stacks)}"
    outputs = {
        output: {"Value": aws_stack.ref(logical_id)} for logical_id, output in OUTPUT_FOR_RESOURCE.items()
    }
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
    moto_server.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))

    # When the operator sets the WooCommerce secret of that stack
    result = run(
        "woocommerce", "--stack", name, "--region", LOCAL_REGION, "--from-stdin", stdin="wc_secret_77\n"
    )

    # Then it is in that stack's secret, and the output names the stack, not the value
    assert result.exit_code == 0, result.output
    assert stored(aws_stack, moto_server, "WooCommerceWebhookSecret") == "wc_secret_77"
    assert f"of stack {name} ({LOCAL_REGION})" in result.output
    assert "wc_secret_77" not in result.output


def test_an_unknown_stack_is_one_clear_line(moto_server: MotoServer) -> None:
    result = run("shopify", "--stack", "no-such-stack", "--region", LOCAL_REGION, "--from-stdin", stdin="x1")

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: stack no-such-stack does not exist in {LOCAL_REGION}"
    ]


def test_no_option_or_argument_can_carry_a_value() -> None:
    # A secret on the command line would land in shell history and `ps`: the only argument is a choice of
    # which secret, and every option is a flag or names where the stack is.
    params = {param.name: param for param in set_secret.params}
    assert set(params) == {"which", "from_stdin", "keep_previous", "stack_name", "region", "profile"}
    assert isinstance(params["which"].type, click.Choice)
    assert {name for name, param in params.items() if isinstance(param, click.Option) and param.is_flag} == {
        "from_stdin",
        "keep_previous",
    }

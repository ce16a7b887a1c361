"""Which fanfare-sync the operator commands talk to: the local stack (default) or a deployed stack.

- Local: `make run` writes `.local/stack.json` (moto endpoint, gateway URL, every resource's physical id)
  while it runs; the commands read it and talk to moto with its fixed dummy credentials.
  `FANFARE_SYNC_STATE_DIR` points at another state directory (tests run a stack with their own).
- Deployed (`--stack NAME`): resources come from the stack's Outputs (the names template.yaml declares),
  and, for any output an older or hand-edited stack lacks, from its resources by logical id. Region,
  profile and credentials come from the usual AWS configuration (`AWS_PROFILE`, `AWS_REGION`,
  `~/.aws/config`, SSO, instance roles ...), overridable with `--profile` / `--region`.

Every AWS failure is turned into one line on stderr and exit code 1 by `aws_errors`, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from fanfare_sync.errors import DependencyUnavailableError
from fanfare_sync_cli.local.moto_server import LOCAL_CREDENTIALS
from fanfare_sync_cli.local.stack import STATE_DIR

STATE_DIR_ENV = "FANFARE_SYNC_STATE_DIR"

# template.yaml's Outputs, by the logical id of the resource each one names. Local resources are keyed by
# logical id too (stack.json), so both kinds of target answer `resource("CompletionDLQ")` the same way.
OUTPUT_FOR_RESOURCE = {
    "CompletionQueue": "CompletionQueueUrl",
    "CompletionDLQ": "CompletionDLQUrl",
    "OrdersTable": "OrdersTableName",
    "ShopifyWebhookSecret": "ShopifyWebhookSecretArn",
    "WooCommerceWebhookSecret": "WooCommerceWebhookSecretArn",
    "FanfareCredentialsSecret": "FanfareCredentialsSecretArn",
}
WEBHOOK_OUTPUTS = {"shopify": "ShopifyWebhookUrl", "woocommerce": "WooCommerceWebhookUrl"}
# The routes the template's HttpApi events declare (and the outputs above point at).
WEBHOOK_PATHS = {"shopify": "/webhooks/shopify", "woocommerce": "/webhooks/woocommerce"}
WEBHOOK_SECRETS = {"shopify": "ShopifyWebhookSecret", "woocommerce": "WooCommerceWebhookSecret"}


def state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured) if configured else STATE_DIR


@dataclass
class Target:
    """One resolved fanfare-sync: where its webhooks are and what its resources are called."""

    description: str
    local: bool
    region: str
    session: Any
    endpoint_url: str | None
    resources: dict[str, str]
    webhook_urls: dict[str, str]
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def resource(self, logical_id: str) -> str:
        value = self.resources.get(logical_id)
        if not value:
            output = OUTPUT_FOR_RESOURCE.get(logical_id, logical_id)
            raise click.ClickException(
                f"{self.description} has no {logical_id} (neither an output {output} nor a resource)"
            )
        return value

    def webhook_url(self, platform: str) -> str:
        url = self.webhook_urls.get(platform)
        if not url:
            raise click.ClickException(
                f"{self.description} has no {platform} webhook URL (output {WEBHOOK_OUTPUTS[platform]})"
            )
        return url

    def webhook_secrets(self, platform: str) -> str:
        """The raw value of the platform's webhook secret (plain, or a JSON list during a rotation)."""
        response = self.client("secretsmanager").get_secret_value(
            SecretId=self.resource(WEBHOOK_SECRETS[platform])
        )
        return str(response.get("SecretString") or "")


class TargetSelector:
    """The operator's choice (`--stack`, `--region`, `--profile`), resolved only when a command needs it:
    `send --url ... --secret ...` talks to no stack at all."""

    def __init__(
        self, stack_name: str | None = None, region: str | None = None, profile: str | None = None
    ) -> None:
        self.stack_name = stack_name
        self.region = region
        self.profile = profile
        self._target: Target | None = None

    @property
    def local(self) -> bool:
        return self.stack_name is None

    def resolve(self) -> Target:
        if self._target is None:
            if self.stack_name is None:
                self._target = local_target(state_dir())
            else:
                self._target = deployed_target(self.stack_name, self.region, self.profile)
        return self._target


class LocalStackNotRunningError(click.ClickException):
    pass


def local_target(directory: Path) -> Target:
    path = directory / "stack.json"
    hint = "start it with `make run` (or pass --stack NAME for a deployed stack)"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalStackNotRunningError(f"the local stack is not running (no {path}): {hint}") from None
    except (OSError, ValueError) as error:
        raise click.ClickException(f"cannot read {path}: {error}") from None
    if not _process_alive(state.get("pid")):
        # `make run` removes the file when it stops; one left behind by a killed run names a dead process.
        raise LocalStackNotRunningError(
            f"the local stack is not running ({path} names process {state.get('pid')}, which has exited): "
            f"{hint}"
        )
    session = boto3.Session(region_name=state["region"], **LOCAL_CREDENTIALS)
    gateway = str(state["gatewayUrl"]).rstrip("/")
    return Target(
        description=f"the local stack ({state['stackName']})",
        local=True,
        region=state["region"],
        session=session,
        endpoint_url=state["awsEndpointUrl"],
        resources={str(k): str(v) for k, v in state.get("resources", {}).items()},
        webhook_urls={platform: gateway + route for platform, route in WEBHOOK_PATHS.items()},
    )


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return True  # nothing to check against; a dead endpoint still gives a clear error later
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, but another user's
    return True


def deployed_target(stack_name: str, region: str | None, profile: str | None) -> Target:
    # boto3 reads AWS_DEFAULT_REGION and the profile's region; the AWS CLI v2 also reads AWS_REGION (and
    # prefers it), so an operator's shell set up for the CLI selects the same region here.
    session = boto3.Session(profile_name=profile, region_name=region or os.environ.get("AWS_REGION") or None)
    resolved_region = session.region_name
    if not resolved_region:
        raise click.ClickException(
            "no AWS region configured: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, "
            "or set a region in your profile"
        )
    cloudformation = session.client("cloudformation", region_name=resolved_region)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if _error_code(error) == "ValidationError" and "does not exist" in _error_message(error):
            raise click.ClickException(f"stack {stack_name} does not exist in {resolved_region}") from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    resources = {
        logical_id: outputs[output] for logical_id, output in OUTPUT_FOR_RESOURCE.items() if output in outputs
    }
    webhook_urls = {
        platform: outputs[output] for platform, output in WEBHOOK_OUTPUTS.items() if output in outputs
    }
    if len(resources) < len(OUTPUT_FOR_RESOURCE) or len(webhook_urls) < len(WEBHOOK_OUTPUTS):
        # A stack deployed before an output existed still has the resource: its physical id is what the
        # output would have said (queue URL, table name, secret ARN, API id).
        physical = _stack_resources(cloudformation, stack_name)
        for logical_id in OUTPUT_FOR_RESOURCE:
            if logical_id not in resources and physical.get(logical_id):
                resources[logical_id] = physical[logical_id]
        api_id = physical.get("WebhookApi")
        if api_id:
            suffix = "amazonaws.com.cn" if resolved_region.startswith("cn-") else "amazonaws.com"
            for platform, route in WEBHOOK_PATHS.items():
                webhook_urls.setdefault(
                    platform, f"https://{api_id}.execute-api.{resolved_region}.{suffix}{route}"
                )
    return Target(
        description=f"stack {stack_name} ({resolved_region})",
        local=False,
        region=resolved_region,
        session=session,
        endpoint_url=None,
        resources=resources,
        webhook_urls=webhook_urls,
    )


def _stack_resources(cloudformation: Any, stack_name: str) -> dict[str, str]:
    physical: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page.get("StackResourceSummaries", []):
            if summary.get("LogicalResourceId") and summary.get("PhysicalResourceId"):
                physical[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    return physical


# ---------------------------------------------------------------------------------------------- errors
def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def describe_aws_error(error: BaseException, local: bool) -> str | None:
    """One line for an AWS failure, or None when it is not one."""
    if isinstance(error, DependencyUnavailableError) and error.__cause__ is not None:
        # The layer's adapters wrap boto3's errors into their own types; the cause says what happened.
        return describe_aws_error(error.__cause__, local)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: pass --profile, set AWS_PROFILE, or configure credentials "
            "(aws configure / aws sso login)"
        )
    if isinstance(error, ProfileNotFound | NoRegionError):
        return str(error)
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        hint = ": is the local stack (`make run`) still running?" if local else ""
        return f"cannot reach AWS at {getattr(error, 'kwargs', {}).get('endpoint_url', '?')}{hint}"
    if isinstance(error, ClientError):
        operation = getattr(error, "operation_name", "request")
        return f"AWS {operation} failed: {_error_code(error)}: {_error_message(error)}".rstrip(": ")
    if isinstance(error, BotoCoreError):
        return f"AWS request failed: {error}"
    return None


@contextlib.contextmanager
def aws_errors(local: bool) -> Iterator[None]:
    try:
        yield
    except click.ClickException:
        raise
    except (BotoCoreError, ClientError, DependencyUnavailableError) as error:
        message = describe_aws_error(error, local)
        if message is None:
            raise
        raise click.ClickException(message) from None


def target_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add --stack/--region/--profile to a command; it receives them as `target: TargetSelector`, and any
    AWS failure inside it ends the command with one line instead of a traceback."""

    @functools.wraps(command)
    def wrapper(
        *args: Any, stack_name: str | None, region: str | None, profile: str | None, **kwargs: Any
    ) -> None:
        selector = TargetSelector(stack_name, region, profile)
        with aws_errors(selector.local):
            command(*args, target=selector, **kwargs)

    wrapped: Callable[..., None] = wrapper
    for option in (
        click.option("--profile", default=None, help="AWS profile for --stack [default: AWS_PROFILE]."),
        click.option(
            "--region",
            default=None,
            help="AWS region for --stack [default: AWS_REGION, AWS_DEFAULT_REGION, the profile's].",
        ),
        click.option(
            "--stack",
            "stack_name",
            default=None,
            metavar="NAME",
            help="A deployed CloudFormation stack [default: the local stack started by `make run`].",
        ),
    ):
        wrapped = option(wrapped)
    return wrapped

"""`make deploy [ENV=staging|prod] [DRY_RUN=1] [YES=1]`: `sam build`, `sam deploy`, then what to do next.

* The environment is a `samconfig.toml` config-env: staging is `default`, prod is `prod`. Stack name,
  capabilities, parameter overrides and tags come from there, so `make deploy` and a hand-typed
  `sam deploy --config-env ...` deploy the same thing.
* `DRY_RUN=1` prints the exact commands and exits 0. It never contacts AWS, so it needs no credentials.
* Before anything slow, the AWS credentials and region are checked; without them the deploy stops with one
  line on stderr and exit status 1.
* The first deploy of a stack that does not exist yet runs `sam deploy --guided` (SAM asks for every
  parameter, with samconfig.toml's values as defaults, and saves the answers back into samconfig.toml).
* After the deploy it prints the outputs an operator needs next: both webhook URLs, the alerts topic, the
  dashboard (and the staging Fanfare sandbox), and the commands that set the secrets.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
SAMCONFIG: Final = PROJECT_ROOT / "samconfig.toml"
BUILT_TEMPLATE: Final = ".aws-sam/build/template.yaml"
# `make deploy ENV=...` names; the values are samconfig.toml's config-envs.
ENVIRONMENTS: Final[Mapping[str, str]] = {"staging": "default", "prod": "prod"}
# Printed after a deploy, in this order (an output the stack lacks is left out).
SHOWN_OUTPUTS: Final = (
    ("ShopifyWebhookUrl", "Shopify webhook URL"),
    ("WooCommerceWebhookUrl", "WooCommerce webhook URL"),
    ("AlertsTopicArn", "alerts topic"),
    ("DashboardUrl", "dashboard"),
    ("FanfareSandboxUrl", "Fanfare sandbox"),
)
PREFIX: Final = "make deploy:"


class DeployError(Exception):
    """Stops the deploy; the message is the one line the operator sees."""


@dataclass(frozen=True)
class Plan:
    environment: str
    config_env: str
    stack_name: str
    region: str | None
    sam: str
    yes: bool = False

    def build_command(self) -> list[str]:
        return [self.sam, "build", "--config-env", self.config_env, "--template", "template.yaml"]

    def deploy_command(self, *, guided: bool) -> list[str]:
        command = [
            self.sam,
            "deploy",
            "--config-env",
            self.config_env,
            "--template-file",
            BUILT_TEMPLATE,
            # A deploy with nothing to change is a success here: the outputs are still printed.
            "--no-fail-on-empty-changeset",
        ]
        if self.region:
            command += ["--region", self.region]
        if self.yes:
            command.append("--no-confirm-changeset")
        if guided:
            command.append("--guided")
        return command

    def build_environment(self) -> dict[str, str]:
        # The makefile builds call `python3 -m pip`: the SAM virtualenv's interpreter has pip, as a fresh
        # machine's python3 may not (what `make build` does too).
        sam_bin = str(Path(self.sam).parent)
        return {**os.environ, "PATH": f"{sam_bin}{os.pathsep}{os.environ.get('PATH', '')}"}

    def shell_line(self, command: Sequence[str], *, with_path: bool = False) -> str:
        line = shlex.join(command)
        if with_path:
            return f'PATH={shlex.quote(str(Path(self.sam).parent))}:"$PATH" {line}'
        return line


def samconfig_section(config: Mapping[str, Any], config_env: str, command: str) -> Mapping[str, Any]:
    section: Mapping[str, Any] = config.get(config_env, {}).get(command, {}).get("parameters", {})
    return section


def make_plan(
    environment: str,
    sam: str,
    *,
    region: str | None = None,
    yes: bool = False,
    samconfig: Path = SAMCONFIG,
    environ: Mapping[str, str] = os.environ,
) -> Plan:
    config_env = ENVIRONMENTS[environment]
    try:
        config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise DeployError(f"cannot read {samconfig.name}: {error}") from None
    deploy = samconfig_section(config, config_env, "deploy")
    stack_name = deploy.get("stack_name") or samconfig_section(config, config_env, "global").get("stack_name")
    if not stack_name:
        raise DeployError(f"{samconfig.name} [{config_env}] names no stack_name")
    # The region SAM will use, in SAM's order: the command line, samconfig.toml (a guided deploy saves it
    # there), then the environment. Passed to `sam deploy` explicitly so both talk to the same region.
    resolved_region = (
        region or deploy.get("region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    )
    return Plan(environment, config_env, str(stack_name), resolved_region or None, sam, yes)


def dry_run(plan: Plan, out: TextIO) -> int:
    print(
        f"{PREFIX} dry run for {plan.environment}: stack {plan.stack_name} "
        f"(samconfig.toml [{plan.config_env}]); nothing is run.",
        file=out,
    )
    print(plan.shell_line(plan.build_command(), with_path=True), file=out)
    print(plan.shell_line(plan.deploy_command(guided=False)), file=out)
    print(
        f"# the first deploy, while stack {plan.stack_name} does not exist yet, runs guided instead:",
        file=out,
    )
    print(plan.shell_line(plan.deploy_command(guided=True)), file=out)
    return 0


def aws_session(plan: Plan) -> Any:
    # The profile is AWS_PROFILE's, which SAM reads too, so both act as the same identity.
    try:
        session = boto3.Session(region_name=plan.region)
    except ProfileNotFound as error:
        raise DeployError(str(error)) from None
    if session.get_credentials() is None:
        raise DeployError(
            "no AWS credentials found: set AWS_PROFILE (or run `aws configure` / `aws sso login`), then "
            "run make deploy again"
        )
    if not session.region_name:
        raise DeployError(
            "no AWS region: set AWS_REGION (or a region in your AWS profile), then run it again"
        )
    return session


def caller_account(session: Any) -> str:
    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except NoCredentialsError:
        raise DeployError("no AWS credentials found: set AWS_PROFILE or run `aws configure`") from None
    except (ClientError, BotoCoreError) as error:
        raise DeployError(f"the AWS credentials do not work: {_describe(error)}") from None


def is_first_deploy(cloudformation: Any, stack_name: str) -> bool:
    """True when the stack does not exist yet, so SAM must ask for its parameters (guided)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
            return True
        raise DeployError(f"cannot look up stack {stack_name}: {_describe(error)}") from None
    status = str(stacks[0].get("StackStatus", "")) if stacks else ""
    if not stacks or status == "REVIEW_IN_PROGRESS":
        # REVIEW_IN_PROGRESS: a change set was created and never executed, so nothing is deployed yet.
        return True
    if status == "ROLLBACK_COMPLETE":
        # CloudFormation cannot update a stack whose creation rolled back; it has to go first.
        raise DeployError(
            f"stack {stack_name} is ROLLBACK_COMPLETE (its first deploy failed; its events say why): "
            f"delete it with `sam delete --stack-name {stack_name}`, then deploy again"
        )
    return False


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def print_outputs(plan: Plan, region: str, outputs: Mapping[str, str], out: TextIO) -> None:
    print(f"\n{plan.stack_name} is deployed in {region}:", file=out)
    for key, label in SHOWN_OUTPUTS:
        if key in outputs:
            print(f"  {label + ':':<26}{outputs[key]}", file=out)
    where = f"--stack {plan.stack_name} --region {region}"
    print("\nNext, set the secrets (each value is prompted for, hidden; see docs/deploy.md):", file=out)
    print(f"  fanfare-sync secrets set shopify {where}", file=out)
    print(f"  fanfare-sync secrets set woocommerce {where}", file=out)
    if "FanfareSandboxUrl" in outputs:
        print(
            "  (Fanfare credentials: not needed while the sandbox is on; it accepts the generated ones)",
            file=out,
        )
    else:
        print(f"  fanfare-sync secrets set fanfare {where}", file=out)


Runner = Callable[[Sequence[str], Mapping[str, str]], int]


def run_command(command: Sequence[str], env: Mapping[str, str]) -> int:
    # Inherits the terminal: guided prompts and the change-set confirmation are SAM's own.
    completed = subprocess.run(  # noqa: S603 - the SAM CLI with arguments built here, no shell
        list(command), cwd=PROJECT_ROOT, env=dict(env), check=False
    )
    return completed.returncode


def deploy(plan: Plan, *, run: Runner = run_command, out: TextIO = sys.stdout) -> int:
    session = aws_session(plan)
    account = caller_account(session)
    region = str(session.region_name)
    plan = Plan(plan.environment, plan.config_env, plan.stack_name, region, plan.sam, plan.yes)
    cloudformation = session.client("cloudformation")
    guided = is_first_deploy(cloudformation, plan.stack_name)
    print(
        f"{PREFIX} {plan.environment} = stack {plan.stack_name} in account {account}, {region}"
        + (" (first deploy: guided)" if guided else ""),
        file=out,
        flush=True,
    )
    env = plan.build_environment()
    if (code := run(plan.build_command(), env)) != 0:
        raise DeployError(f"sam build failed (exit {code}); its output is above")
    if (code := run(plan.deploy_command(guided=guided), env)) != 0:
        raise DeployError(f"sam deploy failed (exit {code}); its output is above")
    try:
        outputs = stack_outputs(cloudformation, plan.stack_name)
    except ClientError as error:
        # A guided deploy may have been answered with another stack name; SAM saved it in samconfig.toml.
        raise DeployError(f"cannot read the outputs of {plan.stack_name}: {_describe(error)}") from None
    print_outputs(plan, region, outputs, out)
    return 0


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    return str(error)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--env", default="staging", choices=sorted(ENVIRONMENTS), help="ENV= (default: staging)"
    )
    parser.add_argument("--dry-run", action="store_true", help="DRY_RUN=1: print the commands, run nothing")
    parser.add_argument("--yes", action="store_true", help="YES=1: deploy the change set without asking")
    parser.add_argument("--sam", default=str(Path(".venv-sam") / "bin" / "sam"), help="the SAM CLI")
    parser.add_argument("--region", default=None, help="default: samconfig.toml, AWS_REGION, the profile's")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        plan = make_plan(args.env, args.sam, region=args.region, yes=args.yes)
        if args.dry_run:
            return dry_run(plan, sys.stdout)
        return deploy(plan)
    except DeployError as error:
        print(f"{PREFIX} {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PREFIX} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

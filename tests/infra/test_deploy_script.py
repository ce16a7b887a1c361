"""`make deploy` (scripts/deploy.py): the exact commands of a dry run, the one-line failure without
credentials, guided on the first deploy (decided by CloudFormation, here moto's), and the outputs after it.
A stub stands in for the SAM CLI: it records its arguments and, on `deploy`, creates the stack in moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fanfare_sync_cli.local.moto_server import LOCAL_CREDENTIALS, LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.template import PROJECT_ROOT
from scripts.deploy import DeployError, is_first_deploy

pytestmark = pytest.mark.slow

DEPLOY = PROJECT_ROOT / "scripts" / "deploy.py"
STAGING_STACK = "fanfare-sync-staging"  # samconfig.toml [default]

STAGING_DRY_RUN = """\
make deploy: dry run for staging: stack fanfare-sync-staging (samconfig.toml [default]); nothing is run.
PATH=.venv-sam/bin:"$PATH" .venv-sam/bin/sam build --config-env default --template template.yaml
.venv-sam/bin/sam deploy --config-env default --template-file .aws-sam/build/template.yaml \
--no-fail-on-empty-changeset
# the first deploy, while stack fanfare-sync-staging does not exist yet, runs guided instead:
.venv-sam/bin/sam deploy --config-env default --template-file .aws-sam/build/template.yaml \
--no-fail-on-empty-changeset --guided
"""
PROD_DRY_RUN = """\
make deploy: dry run for prod: stack fanfare-sync-prod (samconfig.toml [prod]); nothing is run.
PATH=.venv-sam/bin:"$PATH" .venv-sam/bin/sam build --config-env prod --template template.yaml
.venv-sam/bin/sam deploy --config-env prod --template-file .aws-sam/build/template.yaml \
--no-fail-on-empty-changeset --region eu-west-1 --no-confirm-changeset
# the first deploy, while stack fanfare-sync-prod does not exist yet, runs guided instead:
.venv-sam/bin/sam deploy --config-env prod --template-file .aws-sam/build/template.yaml \
--no-fail-on-empty-changeset --region eu-west-1 --no-confirm-changeset --guided
"""


# -o: the virtualenvs count as installed, so this never reinstalls them.
MAKE_WITHOUT_INSTALLING = ["make", "--no-print-directory", "-o", ".venv/bin/.installed"]
MAKE_WITHOUT_INSTALLING += ["-o", ".venv-sam/bin/.installed"]


def clean_environment(home: Path, **extra: str) -> dict[str, str]:
    """No AWS configuration at all: no keys, no profile files, no instance metadata to fall back on."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def test_make_deploy_dry_run_prints_the_exact_commands(tmp_path: Path) -> None:
    completed = subprocess.run(
        [*MAKE_WITHOUT_INSTALLING, "deploy", "DRY_RUN=1"],
        cwd=PROJECT_ROOT,
        env=clean_environment(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )

    assert (completed.returncode, completed.stderr) == (0, "")
    assert completed.stdout == STAGING_DRY_RUN


def test_dry_run_for_prod_carries_the_region_and_yes(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(DEPLOY), "--env", "prod", "--dry-run", "--yes", "--sam", ".venv-sam/bin/sam"],
        cwd=PROJECT_ROOT,
        env=clean_environment(tmp_path, AWS_REGION="eu-west-1"),
        capture_output=True,
        text=True,
        check=False,
    )

    assert (completed.returncode, completed.stderr) == (0, "")
    assert completed.stdout == PROD_DRY_RUN


@pytest.fixture
def stub_sam(tmp_path: Path) -> Path:
    """A `sam` that records each call; its `deploy` creates the stack in (moto's) CloudFormation."""
    sam = tmp_path / "bin" / "sam"
    sam.parent.mkdir()
    template = {
        "Resources": {"AlertsTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "ShopifyWebhookUrl": {
                "Value": "https://api123.execute-api.us-east-1.amazonaws.com/webhooks/shopify"
            },
            "WooCommerceWebhookUrl": {
                "Value": "https://api123.execute-api.us-east-1.amazonaws.com/webhooks/woocommerce"
            },
            "AlertsTopicArn": {"Value": {"Ref": "AlertsTopic"}},
            "DashboardUrl": {"Value": "https://console.example/dashboards:name=fanfare-sync-staging"},
            "FanfareSandboxUrl": {"Value": "https://sandbox123.lambda-url.us-east-1.on.aws/"},
        },
    }
    sam.write_text(
        textwrap.dedent(f"""\
            #!{sys.executable}
            import json, os, sys
            import boto3
            with open({str(tmp_path / "calls.jsonl")!r}, "a") as log:
                log.write(json.dumps(sys.argv[1:]) + "\\n")
            if sys.argv[1] == "deploy":
                region = sys.argv[sys.argv.index("--region") + 1]
                cloudformation = boto3.client("cloudformation", region_name=region)
                try:
                    cloudformation.describe_stacks(StackName={STAGING_STACK!r})
                except Exception:
                    body = {json.dumps(template)!r}
                    cloudformation.create_stack(StackName={STAGING_STACK!r}, TemplateBody=body)
            sys.exit(int(os.environ.get("STUB_SAM_EXIT", "0")))
        """)
    )
    sam.chmod(0o755)
    return sam


def calls(stub: Path) -> list[list[str]]:
    log = stub.parent.parent / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_deploy(sam: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEPLOY), "--env", "staging", "--sam", str(sam), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_credentials_it_fails_in_one_line_before_building(stub_sam: Path, tmp_path: Path) -> None:
    completed = run_deploy(stub_sam, clean_environment(tmp_path, AWS_REGION="us-east-1"))

    assert completed.returncode == 1
    assert completed.stdout == ""
    [line] = completed.stderr.splitlines()
    assert line.startswith("make deploy: no AWS credentials found:")
    assert calls(stub_sam) == []  # nothing was built or deployed


def test_without_a_region_it_fails_in_one_line(stub_sam: Path, tmp_path: Path) -> None:
    env = clean_environment(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="example")

    completed = run_deploy(stub_sam, env)

    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [
        "make deploy: no AWS region: set AWS_REGION (or a region in your AWS profile), then run it again"
    ]
    assert calls(stub_sam) == []


@pytest.fixture(scope="module")
def cloudformation_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    # Its own server: the stack names here are samconfig.toml's, which no other test may see.
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto-deploy") / "moto.log").start()
    yield server
    server.stop()


def moto_environment(server: MotoServer, home: Path) -> dict[str, str]:
    return clean_environment(
        home,
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_REGION=LOCAL_REGION,
        AWS_ACCESS_KEY_ID=LOCAL_CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )


def test_first_deploy_is_guided_then_plain_and_prints_the_outputs(
    stub_sam: Path, tmp_path: Path, cloudformation_server: MotoServer
) -> None:
    env = moto_environment(cloudformation_server, tmp_path)

    first = run_deploy(stub_sam, env)
    second = run_deploy(stub_sam, env)

    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert second.returncode == 0, second.stderr
    build = ["build", "--config-env", "default", "--template", "template.yaml"]
    deploy = ["deploy", "--config-env", "default", "--template-file", ".aws-sam/build/template.yaml"]
    deploy += ["--no-fail-on-empty-changeset", "--region", LOCAL_REGION]
    assert calls(stub_sam) == [build, [*deploy, "--guided"], build, deploy]
    assert (
        "stack fanfare-sync-staging in account 123456789012, us-east-1 (first deploy: guided)" in first.stdout
    )
    assert "(first deploy: guided)" not in second.stdout
    for label, value in [
        ("Shopify webhook URL:", "https://api123.execute-api.us-east-1.amazonaws.com/webhooks/shopify"),
        (
            "WooCommerce webhook URL:",
            "https://api123.execute-api.us-east-1.amazonaws.com/webhooks/woocommerce",
        ),
        ("alerts topic:", "arn:aws:sns:us-east-1:123456789012:"),
        ("dashboard:", "https://console.example/dashboards:name=fanfare-sync-staging"),
        ("Fanfare sandbox:", "https://sandbox123.lambda-url.us-east-1.on.aws/"),
    ]:
        [line] = [line for line in second.stdout.splitlines() if line.strip().startswith(label)]
        assert value in line, line
    assert "fanfare-sync secrets set shopify --stack fanfare-sync-staging --region us-east-1" in second.stdout


def test_a_failed_build_stops_before_deploying(
    stub_sam: Path, tmp_path: Path, cloudformation_server: MotoServer
) -> None:
    env = {**moto_environment(cloudformation_server, tmp_path), "STUB_SAM_EXIT": "2"}

    completed = run_deploy(stub_sam, env)

    assert completed.returncode == 1
    assert completed.stderr.splitlines() == ["make deploy: sam build failed (exit 2); its output is above"]
    assert [call[0] for call in calls(stub_sam)] == ["build"]


def test_guided_is_decided_by_whether_cloudformation_has_the_stack(cloudformation_server: MotoServer) -> None:
    cloudformation = cloudformation_server.client("cloudformation")
    assert is_first_deploy(cloudformation, "fanfare-sync-not-yet") is True

    cloudformation.create_stack(
        StackName="fanfare-sync-exists",
        TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}),
    )

    assert is_first_deploy(cloudformation, "fanfare-sync-exists") is False


class _StackIn:
    def __init__(self, status: str | None = None, error: ClientError | None = None) -> None:
        self.status, self.error = status, error

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"Stacks": [{"StackName": StackName, "StackStatus": self.status}]}


def test_a_stack_whose_creation_rolled_back_must_be_deleted_first() -> None:
    # moto cannot make a creation roll back, so the state CloudFormation reports is given directly.
    with pytest.raises(DeployError, match=r"ROLLBACK_COMPLETE .*`sam delete --stack-name s1`"):
        is_first_deploy(_StackIn("ROLLBACK_COMPLETE"), "s1")
    assert is_first_deploy(_StackIn("REVIEW_IN_PROGRESS"), "s1") is True  # a change set never executed
    assert is_first_deploy(_StackIn("UPDATE_ROLLBACK_COMPLETE"), "s1") is False


def test_expired_credentials_are_one_clear_line() -> None:
    denied = ClientError(
        {
            "Error": {
                "Code": "ExpiredToken",
                "Message": "The security token included in the request is expired",
            }
        },
        "DescribeStacks",
    )
    with pytest.raises(DeployError) as raised:
        is_first_deploy(_StackIn(error=denied), "s1")
    assert str(raised.value) == (
        "cannot look up stack s1: ExpiredToken: The security token included in the request is expired"
    )

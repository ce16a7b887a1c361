"""The template as CloudFormation sees it: transformed offline by aws-sam-translator, then checked for
dangling references and IAM scope, then created in moto's CloudFormation (the part moto supports).

cfn-lint and `sam validate --lint` check each resource against its schema; these checks are about the
template as a whole: what refers to what, which condition guards what, and what each role may touch.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fanfare_sync_cli.local.moto_server import MotoServer
from fanfare_sync_cli.local.template import DEFAULT_TEMPLATE, PROJECT_ROOT

pytestmark = pytest.mark.slow

TRANSLATOR = Path(__file__).with_name("sam_translate.py")
PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}

# AWS-managed policies SAM attaches to the roles it generates, with their documented statements. They are
# the only grants on Resource "*" in the stack, and each is accepted here for the reason given.
ACCEPTED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": (
        "logs:CreateLogGroup, logs:CreateLogStream, logs:PutLogEvents on *: SAM attaches it to every "
        "function role it generates. It reaches logs only, and each function writes to its own log group "
        "(LoggingConfig); scoping it further means hand-writing every function's role."
    ),
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": (
        "sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes on *: SAM attaches it to a function "
        "with an SQS event, because the event source mapping polls the queue with the function's role. "
        "Read/delete only; the consumer is the only function with an SQS event (checked below)."
    ),
}
# What each function's role (and the scheduler's) reaches, by logical id: nothing else of the stack, and
# nothing outside it.
EXPECTED_REACH = {
    "ShopifyWebhookFunctionRole": {"CompletionQueue", "ShopifyWebhookSecret"},
    "WooCommerceWebhookFunctionRole": {"CompletionQueue", "WooCommerceWebhookSecret"},
    "CompleteAdmissionFunctionRole": {
        "OrdersTable",
        "IdempotencyTable",
        "CompletionQueue",
        "CompletionDLQ",
        "FanfareCredentialsSecret",
    },
    "StaleOrdersFunctionRole": {"OrdersTable", "CompletionQueue"},
    "StaleOrdersFunctionEveryRole": {"StaleOrdersFunction"},
    "FanfareSandboxFunctionRole": {"FanfareSandboxTable", "FanfareCredentialsSecret"},
}


def sam_python() -> str:
    candidates = [
        os.environ.get("SAM_CLI"),
        str(PROJECT_ROOT / ".venv-sam" / "bin" / "sam"),
        shutil.which("sam"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            python = Path(candidate).parent / "python"
            if python.exists():
                return str(python)
    pytest.skip(
        "the SAM CLI (which ships aws-sam-translator) is not installed here; `make test` installs it into "
        ".venv-sam and runs this test"
    )


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    completed = subprocess.run(
        [sam_python(), str(TRANSLATOR), str(DEFAULT_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


# ---------------------------------------------------------------------------------------------- walking
def references(value: Any, guards: frozenset[str] = frozenset()) -> Iterator[tuple[str, str, frozenset[str]]]:
    """Every (kind, name, conditions known true there) a value refers to: kind is "ref" (Ref, GetAtt, Sub)
    or "condition" (Fn::If's first argument). Fn::If's true branch is known to hold its condition."""
    if isinstance(value, list):
        for item in value:
            yield from references(item, guards)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str):
            yield "ref", arg, guards
            return
        if key == "Fn::GetAtt":
            target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
            yield "ref", target, guards
            return
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
                if name not in local:
                    yield "ref", name.split(".", 1)[0], guards
            yield from references(local, guards)
            return
        if key == "Fn::If":
            condition, when_true, when_false = arg
            yield "condition", condition, guards
            yield from references(when_true, guards | {condition})
            yield from references(when_false, guards)
            return
    for item in value.values():
        yield from references(item, guards)


def owners(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in document["Resources"].items():
        yield f"resource {name}", resource
    for name, output in document.get("Outputs", {}).items():
        yield f"output {name}", output


# ---------------------------------------------------------------------------------------------- transform
def test_transform_leaves_plain_cloudformation_with_the_sandbox_conditional(
    transformed: dict[str, Any],
) -> None:
    types = {resource["Type"] for resource in transformed["Resources"].values()}
    assert not {t for t in types if t.startswith("AWS::Serverless::")}
    assert "Transform" not in transformed
    sandbox = {
        name: resource
        for name, resource in transformed["Resources"].items()
        if name.startswith("FanfareSandbox")
    }
    # The function, its role, its log group, its table, its URL and the URL's two public permissions.
    assert {r["Type"] for r in sandbox.values()} >= {
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::Lambda::Url",
        "AWS::Lambda::Permission",
        "AWS::DynamoDB::Table",
        "AWS::Logs::LogGroup",
    }
    assert {name: r.get("Condition") for name, r in sandbox.items()} == dict.fromkeys(
        sandbox, "WithFanfareSandbox"
    )
    assert transformed["Outputs"]["FanfareSandboxUrl"]["Condition"] == "WithFanfareSandbox"
    [url] = [r for r in sandbox.values() if r["Type"] == "AWS::Lambda::Url"]
    assert url["Properties"]["AuthType"] == "NONE"  # guarded by the Fanfare credentials, as Fanfare's API is


def test_no_reference_dangles(transformed: dict[str, Any]) -> None:
    resources = set(transformed["Resources"])
    parameters = set(transformed.get("Parameters", {}))
    conditions = set(transformed.get("Conditions", {}))
    dangling = []
    for owner, entry in owners(transformed):
        for kind, name, _ in references(entry):
            known = conditions if kind == "condition" else resources | parameters | PSEUDO_PARAMETERS
            if name not in known:
                dangling.append(f"{owner} -> {kind} {name}")
        if entry.get("Condition") is not None and entry["Condition"] not in conditions:
            dangling.append(f"{owner} -> condition {entry['Condition']}")
        depends = entry.get("DependsOn", [])
        for name in [depends] if isinstance(depends, str) else depends:
            if name not in resources:
                dangling.append(f"{owner} -> DependsOn {name}")
    for name, expression in transformed.get("Conditions", {}).items():
        for inner in re.findall(r"'Condition': '([^']+)'", str(expression)):
            if inner not in conditions:
                dangling.append(f"condition {name} -> condition {inner}")
        for kind, ref, _ in references(expression):
            if kind == "ref" and ref not in parameters | PSEUDO_PARAMETERS:
                dangling.append(f"condition {name} -> {ref} (conditions may only use parameters)")
    assert dangling == []


def test_conditional_resources_are_only_referenced_where_their_condition_holds(
    transformed: dict[str, Any],
) -> None:
    # With DeployFanfareSandbox=false, CloudFormation rejects any reference to a sandbox resource that is not
    # itself conditional on it or inside the true branch of an Fn::If on it.
    conditional = {
        name: resource["Condition"]
        for name, resource in transformed["Resources"].items()
        if resource.get("Condition")
    }
    unguarded = []
    for owner, entry in owners(transformed):
        own = frozenset({entry["Condition"]}) if entry.get("Condition") else frozenset()
        for kind, name, guards in references(entry, own):
            if kind == "ref" and name in conditional and conditional[name] not in guards:
                unguarded.append(f"{owner} -> {name} (needs {conditional[name]})")
    assert unguarded == []
    # And the consumer does switch to the sandbox when it is deployed.
    variables = transformed["Resources"]["CompleteAdmissionFunction"]["Properties"]["Environment"][
        "Variables"
    ]
    assert variables["FANFARE_API_URL"] == {
        "Fn::If": [
            "WithFanfareSandbox",
            {"Fn::GetAtt": ["FanfareSandboxFunctionUrl", "FunctionUrl"]},
            {"Ref": "FanfareApiUrl"},
        ]
    }


# ---------------------------------------------------------------------------------------------- IAM scope
def roles(transformed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in role.get("Policies", []):
        body = policy["PolicyDocument"]["Statement"]
        found.extend(body if isinstance(body, list) else [body])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_inline_statement_grants_everything(transformed: dict[str, Any]) -> None:
    too_wide = []
    for name, role in roles(transformed).items():
        for statement in statements(role):
            if "NotResource" in statement or "NotAction" in statement:
                too_wide.append(f"{name}: NotResource/NotAction")
            if "*" in as_list(statement.get("Resource")):
                too_wide.append(f"{name}: Resource * for {statement.get('Action')}")
            for action in as_list(statement.get("Action")):
                # A prefix wildcard (sqs:SendMessage* = SendMessage and SendMessageBatch) is fine; a whole
                # service or everything is not.
                if action == "*" or str(action).endswith(":*"):
                    too_wide.append(f"{name}: action {action}")
    assert too_wide == []


def test_managed_policies_are_only_the_accepted_ones(transformed: dict[str, Any]) -> None:
    attached = {
        (name, arn) for name, role in roles(transformed).items() for arn in role.get("ManagedPolicyArns", [])
    }
    assert {arn for _, arn in attached} <= set(ACCEPTED_MANAGED_POLICIES), attached
    sqs_pollers = {name for name, arn in attached if arn.endswith("/AWSLambdaSQSQueueExecutionRole")}
    assert sqs_pollers == {"CompleteAdmissionFunctionRole"}


def test_each_role_reaches_only_its_own_resources(transformed: dict[str, Any]) -> None:
    resources = set(transformed["Resources"])
    reach: dict[str, set[str]] = {}
    literal_resources = []
    for name, role in roles(transformed).items():
        reach[name] = set()
        for statement in statements(role):
            for resource in as_list(statement.get("Resource")):
                found = {ref for kind, ref, _ in references(resource) if kind == "ref" and ref in resources}
                if not found:
                    # An ARN that names no stack resource reaches something outside the stack.
                    literal_resources.append(f"{name}: {resource}")
                reach[name] |= found
    assert literal_resources == []
    assert reach == EXPECTED_REACH
    # Every function's role is one of the above: a new function must be added here, with its reach.
    function_roles = {
        resource["Properties"]["Role"]["Fn::GetAtt"][0]
        for resource in transformed["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert function_roles <= set(EXPECTED_REACH)


def test_only_the_sandbox_url_is_public(transformed: dict[str, Any]) -> None:
    public = {
        name: resource.get("Condition")
        for name, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Permission" and resource["Properties"]["Principal"] == "*"
    }
    assert public == {
        "FanfareSandboxFunctionUrlPublicPermissions": "WithFanfareSandbox",
        "FanfareSandboxFunctionURLInvokeAllowPublicAccess": "WithFanfareSandbox",
    }


# ---------------------------------------------------------------------------------------------- moto
# What moto 5.2.5's CloudFormation really creates (local-aws.md §1.4). The other types of the stack
# (Secrets Manager secrets, alarms, the schedule, the HTTP API, the function URL) it skips or cannot
# describe, so they are taken out and references to them become placeholders.
MOTO_CREATES = {
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::CloudWatch::Dashboard",
}


def moto_subset(document: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    removed = {name for name, r in document["Resources"].items() if r["Type"] not in MOTO_CREATES}

    def replace(value: Any) -> Any:
        if isinstance(value, list):
            return [replace(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg in removed:
                return f"removed:{arg}"
            if key == "Fn::GetAtt" and arg[0] in removed:
                return f"removed:{arg[0]}.{arg[1]}"
            if key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                text = re.sub(
                    r"\$\{([^}!][^}]*)\}",
                    lambda m: f"removed-{m.group(1)}" if m.group(1).split(".")[0] in removed else m.group(0),
                    text,
                )
                return {"Fn::Sub": text if not local else [text, replace(local)]}
        return {key: replace(item) for key, item in value.items()}

    subset = replace({**document, "Resources": {}})
    subset["Resources"] = {
        name: replace(resource) for name, resource in document["Resources"].items() if name not in removed
    }
    for resource in subset["Resources"].values():
        if "DependsOn" in resource:
            kept = [d for d in as_list(resource["DependsOn"]) if d not in removed]
            resource["DependsOn"] = kept
    return subset, removed


@pytest.fixture(scope="module")
def moto_cloudformation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    # A server of its own: stacks created here must not mix with the session's resources.
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto-cfn") / "moto.log").start()
    s3 = server.client("s3")
    s3.create_bucket(Bucket="placeholder")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    for key in ("code.zip", "layer.zip"):
        s3.put_object(Bucket="placeholder", Key=key, Body=archive.getvalue())
    yield server
    server.stop()


@pytest.mark.parametrize("sandbox", ["false", "true"])
def test_supported_subset_creates_in_moto_cloudformation(
    transformed: dict[str, Any], moto_cloudformation: MotoServer, sandbox: str
) -> None:
    subset, removed = moto_subset(transformed)
    assert {transformed["Resources"][name]["Type"] for name in removed} <= {
        "AWS::SecretsManager::Secret",
        "AWS::CloudWatch::Alarm",
        "AWS::SNS::Subscription",
        "AWS::Scheduler::Schedule",
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Stage",
        "AWS::Lambda::Url",
    }
    cloudformation = moto_cloudformation.client("cloudformation")
    name = f"fanfare-sync-sandbox-{sandbox}"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(subset),
        Parameters=[{"ParameterKey": "DeployFanfareSandbox", "ParameterValue": sandbox}],
        Capabilities=["CAPABILITY_IAM"],
    )
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")

    created = {
        summary["LogicalResourceId"]: (summary["ResourceType"], summary["ResourceStatus"])
        for summary in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        if summary["LogicalResourceId"]
    }
    expected = {
        resource_name: (resource["Type"], "CREATE_COMPLETE")
        for resource_name, resource in subset["Resources"].items()
        if sandbox == "true" or resource.get("Condition") != "WithFanfareSandbox"
    }
    assert created == expected
    physical = {
        s["LogicalResourceId"]: s["PhysicalResourceId"]
        for s in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        if s["LogicalResourceId"]
    }

    # The queues, with the redrive the retry schedule depends on
    sqs = moto_cloudformation.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=physical["CompletionQueue"], AttributeNames=["All"])[
        "Attributes"
    ]
    dlq = sqs.get_queue_attributes(QueueUrl=physical["CompletionDLQ"], AttributeNames=["All"])["Attributes"]
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": 6,
    }
    assert queue["VisibilityTimeout"] == "180"
    assert dlq["MessageRetentionPeriod"] == "1209600"

    # The tables (the sandbox's only with the sandbox)
    dynamodb = moto_cloudformation.client("dynamodb")
    orders = dynamodb.describe_table(TableName=physical["OrdersTable"])["Table"]
    assert [index["IndexName"] for index in orders["GlobalSecondaryIndexes"]] == ["UnsyncedOrders"]
    assert dynamodb.describe_table(TableName=physical["IdempotencyTable"])["Table"]["KeySchema"] == [
        {"AttributeName": "id", "KeyType": "HASH"}
    ]
    assert ("FanfareSandboxTable" in physical) is (sandbox == "true")

    # The alerts topic
    topics = [t["TopicArn"] for t in moto_cloudformation.client("sns").list_topics()["Topics"]]
    assert physical["AlertsTopic"] in topics

    # The consumer's Fanfare URL follows the condition (the sandbox URL itself is a placeholder in moto)
    function = moto_cloudformation.client("lambda").get_function_configuration(
        FunctionName=physical["CompleteAdmissionFunction"]
    )
    fanfare_url = function["Environment"]["Variables"]["FANFARE_API_URL"]
    if sandbox == "true":
        assert fanfare_url == "removed:FanfareSandboxFunctionUrl.FunctionUrl"
    else:
        assert fanfare_url == "https://api.fanfare.io"
    # (moto's CloudFormation drops Architectures, so arm64 is checked on the template and the build instead.)
    assert function["Runtime"] == "python3.13"

"""CloudFormation Conditions in the local runtime: the local stack is the one `sam deploy` would create with
the same parameter values (template.yaml's DeployFanfareSandbox, and the condition language itself)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import provision
from fanfare_sync_cli.local.template import (
    TemplateError,
    evaluate_conditions,
    function_specs,
)

_stacks = itertools.count(1)


def clients(moto_server: MotoServer) -> dict[str, Any]:
    return {name: moto_server.client(name) for name in ("sqs", "dynamodb", "secretsmanager", "sns")}


def test_the_sandbox_is_neither_provisioned_nor_run_by_default(
    moto_server: MotoServer, template: dict[str, Any]
) -> None:
    stack = provision(clients(moto_server), template, f"cond-{next(_stacks)}", LOCAL_REGION, {})

    assert stack.conditions["WithFanfareSandbox"] is False
    assert "FanfareSandboxTable" not in stack.resources
    assert stack.skipped["FanfareSandboxTable"] == "condition WithFanfareSandbox is false"
    assert "FanfareSandboxFunction" not in {spec.logical_id for spec in function_specs(template)}
    # The consumer's Fn::If takes its false branch: the configured Fanfare API
    consumer = {spec.logical_id: spec for spec in function_specs(template)}["CompleteAdmissionFunction"]
    assert stack.resolve(consumer.environment)["FANFARE_API_URL"] == "https://api.fanfare.io"
    values, _ = stack.outputs(template)
    assert "FanfareSandboxUrl" not in values
    assert values["OrdersTableName"] == stack.ref("OrdersTable")


def test_with_the_sandbox_its_table_exists_and_its_function_would_run(
    moto_server: MotoServer, template: dict[str, Any]
) -> None:
    overrides = {"DeployFanfareSandbox": "true"}
    stack = provision(clients(moto_server), template, f"cond-{next(_stacks)}", LOCAL_REGION, {}, overrides)

    assert stack.conditions["WithFanfareSandbox"] is True
    table = moto_server.client("dynamodb").describe_table(TableName=stack.ref("FanfareSandboxTable"))["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert "FanfareSandboxFunction" in {
        spec.logical_id for spec in function_specs(template, parameters=overrides)
    }
    # The true branch names the function URL, which only AWS creates: refused loudly, not guessed.
    consumer = {spec.logical_id: spec for spec in function_specs(template)}["CompleteAdmissionFunction"]
    with pytest.raises(
        TemplateError, match=r"FanfareSandboxFunctionUrl\.FunctionUrl is not available locally"
    ):
        stack.resolve(consumer.environment)


CONDITIONS_TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Env": {"Type": "String", "Default": "staging"},
        "Email": {"Type": "String", "Default": ""},
        "Flag": {"Type": "String", "Default": "true"},
    },
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "HasEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]},
        "ProdWithEmail": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "HasEmail"}]},
        "ProdOrEmail": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "HasEmail"}]},
        # YAML's unquoted true is the text "true" to CloudFormation
        "Flagged": {"Fn::Equals": [{"Ref": "Flag"}, True]},
        "InUsEast1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
    },
    "Resources": {},
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"Env": "staging", "Email": "", "Flag": "true", "AWS::Region": "us-east-1"},
            {"IsProd": False, "HasEmail": False, "ProdWithEmail": False, "ProdOrEmail": False},
        ),
        (
            {"Env": "prod", "Email": "", "Flag": "false", "AWS::Region": "eu-west-1"},
            {"IsProd": True, "HasEmail": False, "ProdWithEmail": False, "ProdOrEmail": True},
        ),
        (
            {"Env": "prod", "Email": "ops@example.com", "Flag": "true", "AWS::Region": "us-east-1"},
            {"IsProd": True, "HasEmail": True, "ProdWithEmail": True, "ProdOrEmail": True},
        ),
    ],
)
def test_condition_functions(values: dict[str, str], expected: dict[str, bool]) -> None:
    results = evaluate_conditions(CONDITIONS_TEMPLATE, values)

    assert {name: results[name] for name in expected} == expected
    assert results["Flagged"] is (values["Flag"] == "true")
    assert results["InUsEast1"] is (values["AWS::Region"] == "us-east-1")


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"A": {"Condition": "Missing"}}, "condition 'Missing' is not defined"),
        ({"A": {"Condition": "B"}, "B": {"Condition": "A"}}, "refers to itself"),
        ({"A": {"Fn::Equals": [{"Fn::FindInMap": ["M", "k", "v"]}, "x"]}}, "is not emulated locally"),
        (
            {"A": {"Fn::Not": [{"Condition": "B"}, {"Condition": "B"}]}, "B": {"Fn::Equals": ["a", "a"]}},
            "not emulated",
        ),
    ],
)
def test_what_the_runtime_cannot_evaluate_is_refused(conditions: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        evaluate_conditions({"Conditions": conditions, "Resources": {}}, {})


def test_fn_if_picks_a_branch_and_no_value_removes_the_property(moto_server: MotoServer) -> None:
    template: dict[str, Any] = {
        "Parameters": {"Retain": {"Type": "String", "Default": "no"}},
        "Conditions": {"Keep": {"Fn::Equals": [{"Ref": "Retain"}, "yes"]}},
        "Resources": {
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "MessageRetentionPeriod": {"Fn::If": ["Keep", 1209600, {"Ref": "AWS::NoValue"}]},
                    "VisibilityTimeout": {"Fn::If": ["Keep", 300, 60]},
                },
            },
            "OnlyWhenKept": {"Type": "AWS::SQS::Queue", "Condition": "Keep"},
        },
    }
    sqs = moto_server.client("sqs")

    plain = provision(clients(moto_server), template, f"cond-{next(_stacks)}", LOCAL_REGION, {})
    kept = provision(
        clients(moto_server), template, f"cond-{next(_stacks)}", LOCAL_REGION, {}, {"Retain": "yes"}
    )

    plain_attributes = sqs.get_queue_attributes(QueueUrl=plain.ref("Queue"), AttributeNames=["All"])[
        "Attributes"
    ]
    kept_attributes = sqs.get_queue_attributes(QueueUrl=kept.ref("Queue"), AttributeNames=["All"])[
        "Attributes"
    ]
    assert (plain_attributes["VisibilityTimeout"], kept_attributes["VisibilityTimeout"]) == ("60", "300")
    assert plain_attributes["MessageRetentionPeriod"] == "345600"  # SQS's default: the property was removed
    assert kept_attributes["MessageRetentionPeriod"] == "1209600"
    assert "OnlyWhenKept" not in plain.resources
    assert "OnlyWhenKept" in kept.resources
    with pytest.raises(TemplateError, match="OnlyWhenKept"):
        plain.resolve({"Ref": "OnlyWhenKept"})  # a resource that does not exist cannot be referred to

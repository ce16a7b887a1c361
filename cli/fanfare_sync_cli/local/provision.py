"""Create the template's data-plane resources (queues, tables, secrets, topics) in moto.

moto's own CloudFormation skips AWS::SecretsManager::Secret (and every AWS::Serverless::* type), so this
small provisioner reads template.yaml itself, resolves the intrinsics the template uses, and fails loudly
on anything it does not understand instead of silently creating less than the template says.

Conditions are evaluated as CloudFormation does, for the parameter values given: a resource whose
Condition is false is not created (and cannot be referenced), and Fn::If picks its branch (AWS::NoValue
removes the property), so the local stack is the one `sam deploy` would create with the same parameters.
"""

from __future__ import annotations

import json
import re
import secrets as random_secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fanfare_sync_cli.local.template import (
    TemplateError,
    condition_holds,
    evaluate_conditions,
    template_parameters,
)

ACCOUNT_ID = "123456789012"

# What the runtime itself stands in for, and what moto cannot run; listed so nothing is skipped silently.
EMULATED_BY_RUNTIME = {
    "AWS::Serverless::Function": "run in a local worker process",
    "AWS::Serverless::HttpApi": "served by the local gateway",
    "AWS::Serverless::LayerVersion": "imported from layers/common",
}
NOT_EMULATED = {
    "AWS::Logs::LogGroup": "logs go to the terminal",
    "AWS::CloudWatch::Alarm": "evaluated by the local runtime (moto does not evaluate alarms)",
    "AWS::CloudWatch::Dashboard": "no console locally",
    "AWS::SNS::Subscription": "no e-mail locally",
}
# What `!Ref` of a resource the runtime stands in for means locally (Lambda's name is its logical id, as
# AWS_LAMBDA_FUNCTION_NAME says; the gateway's API id is "local").
_LOCAL_REFS: dict[str, Callable[[str], str]] = {
    "AWS::Serverless::Function": lambda logical_id: logical_id,
    "AWS::Serverless::HttpApi": lambda _logical_id: "local",
}


@dataclass
class LocalResource:
    logical_id: str
    type: str
    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class ProvisionedStack:
    stack_name: str
    region: str
    resources: dict[str, LocalResource]
    parameters: dict[str, str]
    skipped: dict[str, str]
    local_refs: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        resolved = _Resolver(self).resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def outputs(self, template: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        """(values of the outputs that exist for these conditions and resolve locally, why the others
        cannot be given locally). An output whose Condition is false is in neither: it does not exist."""
        values: dict[str, str] = {}
        unavailable: dict[str, str] = {}
        for name, output in template.get("Outputs", {}).items():
            if not condition_holds(output, self.conditions):
                continue
            try:
                values[name] = str(self.resolve(output["Value"]))
            except TemplateError as error:
                unavailable[name] = str(error)
        return values, unavailable

    def ref(self, logical_id: str) -> str:
        return self.resources[logical_id].ref


def provision(
    clients: Mapping[str, Any],
    template: dict[str, Any],
    stack_name: str,
    region: str,
    secret_values: Mapping[str, str],
    parameter_overrides: Mapping[str, str] | None = None,
) -> ProvisionedStack:
    """`clients` holds boto3 clients by service name (sqs, dynamodb, secretsmanager, sns), all on moto.

    `secret_values` gives the value of a secret by logical id; other secrets get their template value.
    """
    parameters = template_parameters(template, parameter_overrides)
    stack = ProvisionedStack(stack_name, region, {}, parameters, {})
    stack.conditions = evaluate_conditions(template, {**_pseudo_parameters(stack), **parameters})
    resources = template["Resources"]
    for logical_id in _creation_order(resources):
        resource = resources[logical_id]
        kind = resource.get("Type", "")
        if not condition_holds(resource, stack.conditions):
            # Not deployed with these parameters: nothing to create, and nothing may refer to it.
            stack.skipped[logical_id] = f"condition {resource['Condition']} is false"
            continue
        creator = _CREATORS.get(kind)
        if kind in _LOCAL_REFS:
            stack.local_refs[logical_id] = _LOCAL_REFS[kind](logical_id)
        if creator is None:
            stack.skipped[logical_id] = EMULATED_BY_RUNTIME.get(kind) or NOT_EMULATED.get(
                kind, f"{kind} is not emulated locally"
            )
            continue
        props = stack.resolve(resource.get("Properties", {}))
        stack.resources[logical_id] = creator(clients, stack, logical_id, props, secret_values)
    return stack


def _creation_order(resources: dict[str, Any]) -> list[str]:
    """Referenced resources first (a queue's DLQ before the queue)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise TemplateError(f"circular reference through {logical_id}")
        visiting.add(logical_id)
        for dependency in sorted(_references(resources[logical_id].get("Properties", {})) & resources.keys()):
            visit(dependency)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return order


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _pseudo_parameters(stack: ProvisionedStack) -> dict[str, str]:
    return {
        "AWS::StackName": stack.stack_name,
        "AWS::Region": stack.region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }


# What `!Ref AWS::NoValue` resolves to: the property (or list item) holding it is removed.
_NO_VALUE: Any = object()


class _Resolver:
    def __init__(self, stack: ProvisionedStack) -> None:
        self._stack = stack

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::If":
                return self.resolve(self._if(arg))
            if key == "Fn::GetAtt":
                return self._get_att(arg[0], arg[1])
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(part)) for part in arg[1])
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not emulated locally")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _if(self, arg: Any) -> Any:
        """Only the chosen branch is resolved: the other may name a resource that does not exist."""
        if not isinstance(arg, list) or len(arg) != 3:
            raise TemplateError(f"Fn::If needs [condition, value if true, value if false], not {arg!r}")
        name, when_true, when_false = arg
        if name not in self._stack.conditions:
            raise TemplateError(f"Fn::If names condition {name!r}, which is not defined in Conditions")
        return when_true if self._stack.conditions[name] else when_false

    def _ref(self, name: str) -> str:
        pseudo = _pseudo_parameters(self._stack)
        if name in pseudo:
            return pseudo[name]
        if name in self._stack.parameters:
            return self._stack.parameters[name]
        if name in self._stack.resources:
            return self._stack.resources[name].ref
        if name in self._stack.local_refs:
            return self._stack.local_refs[name]
        raise TemplateError(f"!Ref {name}: not a parameter or a locally provisioned resource")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self._stack.resources.get(logical_id)
        if resource is None or attribute not in resource.attributes:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not available locally")
        return resource.attributes[attribute]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute)
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def _arn(stack: ProvisionedStack, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{stack.region}:{ACCOUNT_ID}:{resource}"


def _physical_name(stack: ProvisionedStack, logical_id: str) -> str:
    return f"{stack.stack_name}-{logical_id}"


def _create_queue(
    clients: Mapping[str, Any], stack: ProvisionedStack, logical_id: str, props: dict[str, Any], _: Any
) -> LocalResource:
    name = props.get("QueueName") or _physical_name(stack, logical_id)
    if props.get("FifoQueue") and not name.endswith(".fifo"):
        name += ".fifo"
    attributes: dict[str, str] = {}
    for key in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "MaximumMessageSize",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
        "SqsManagedSseEnabled",
        "FifoQueue",
        "ContentBasedDeduplication",
        "KmsMasterKeyId",
    ):
        if key in props:
            raw = props[key]
            attributes[key] = str(raw).lower() if isinstance(raw, bool) else str(raw)
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            attributes[key] = json.dumps(props[key])
    url = clients["sqs"].create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = _arn(stack, "sqs", name)
    return LocalResource(logical_id, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _create_table(
    clients: Mapping[str, Any], stack: ProvisionedStack, logical_id: str, props: dict[str, Any], _: Any
) -> LocalResource:
    name = props.get("TableName") or _physical_name(stack, logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    described = clients["dynamodb"].create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        clients["dynamodb"].update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    attributes = {"Arn": described["TableArn"]}
    if described.get("LatestStreamArn"):
        attributes["StreamArn"] = described["LatestStreamArn"]
    return LocalResource(logical_id, "AWS::DynamoDB::Table", name, attributes)


def _create_secret(
    clients: Mapping[str, Any],
    stack: ProvisionedStack,
    logical_id: str,
    props: dict[str, Any],
    secret_values: Mapping[str, str],
) -> LocalResource:
    name = props.get("Name") or f"{stack.stack_name}/{logical_id}"
    value = secret_values.get(logical_id)
    if value is None:
        value = props.get("SecretString") or _generated_secret(props.get("GenerateSecretString", {}))
    arn = clients["secretsmanager"].create_secret(Name=name, SecretString=value)["ARN"]
    return LocalResource(logical_id, "AWS::SecretsManager::Secret", arn, {"Id": arn, "Name": name})


def _generated_secret(spec: dict[str, Any]) -> str:
    alphabet = string.ascii_letters + string.digits
    generated = "".join(random_secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = generated
        return json.dumps(document)
    return generated


def _create_topic(
    clients: Mapping[str, Any], stack: ProvisionedStack, logical_id: str, props: dict[str, Any], _: Any
) -> LocalResource:
    name = props.get("TopicName") or _physical_name(stack, logical_id)
    arn = clients["sns"].create_topic(Name=name)["TopicArn"]
    return LocalResource(logical_id, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name})


_CREATORS = {
    "AWS::SQS::Queue": _create_queue,
    "AWS::DynamoDB::Table": _create_table,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::SNS::Topic": _create_topic,
}

"""Read template.yaml the way the local runtime needs it: functions, their routes, queues and secrets.

Local and deployed cannot drift because everything here is read from the same template SAM deploys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"


class TemplateError(ValueError):
    """The template uses something the local runtime does not emulate; the message says what."""


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short forms (!Ref, !GetAtt, !Sub, ...) into their long forms."""


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


def template_parameters(
    template: dict[str, Any], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every parameter's value: its default, unless overridden (as `sam deploy --parameter-overrides`)."""
    parameters = {
        name: _as_text(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
    }
    parameters.update(overrides or {})
    return parameters


def evaluate_conditions(template: dict[str, Any], values: Mapping[str, str]) -> dict[str, bool]:
    """Every entry of the template's Conditions section, evaluated as CloudFormation does.

    `values` gives what `Ref` means here (parameters and pseudo parameters). Fn::Equals, Fn::Not, Fn::And,
    Fn::Or and {"Condition": name} are understood; anything else is refused rather than guessed.
    """
    definitions: dict[str, Any] = template.get("Conditions", {})
    results: dict[str, bool] = {}
    visiting: set[str] = set()

    def condition(name: Any) -> bool:
        if not isinstance(name, str) or name not in definitions:
            raise TemplateError(f"condition {name!r} is not defined in Conditions")
        if name not in results:
            if name in visiting:
                raise TemplateError(f"condition {name} refers to itself")
            visiting.add(name)
            results[name] = evaluate(definitions[name])
            visiting.discard(name)
        return results[name]

    def evaluate(expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Condition":
                return condition(arg)
            if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
                return value(arg[0]) == value(arg[1])
            if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
                return not evaluate(arg[0])
            if key in ("Fn::And", "Fn::Or") and isinstance(arg, list) and arg:
                # Every operand is evaluated (no short circuit), so a malformed one fails loudly locally too.
                operands = [evaluate(item) for item in arg]
                return all(operands) if key == "Fn::And" else any(operands)
        raise TemplateError(f"condition expression {expression!r} is not emulated locally")

    def value(expression: Any) -> str:
        if isinstance(expression, dict):
            if set(expression) == {"Ref"} and expression["Ref"] in values:
                return values[expression["Ref"]]
            raise TemplateError(f"{expression!r} in a condition is not emulated locally")
        return _as_text(expression)

    for name in definitions:
        condition(name)
    return results


def condition_holds(entry: Mapping[str, Any], conditions: Mapping[str, bool]) -> bool:
    """Whether a resource or output (with its optional `Condition`) exists for these conditions."""
    name = entry.get("Condition")
    if name is None:
        return True
    if name not in conditions:
        raise TemplateError(f"condition {name!r} is not defined in Conditions")
    return conditions[name]


def _as_text(value: Any) -> str:
    # CloudFormation compares strings: YAML's unquoted true/false/numbers mean their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str


@dataclass(frozen=True)
class SqsTrigger:
    queue: Any  # the template expression naming the queue (resolved by the provisioner)
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: Any = None


@dataclass(frozen=True)
class ScheduleTrigger:
    expression: Any


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, Any] = field(default_factory=dict)
    routes: list[HttpRoute] = field(default_factory=list)
    sqs_triggers: list[SqsTrigger] = field(default_factory=list)
    schedules: list[ScheduleTrigger] = field(default_factory=list)

    @property
    def module_path(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri / f"{module.replace('.', '/')}.py"

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


def function_specs(
    template: dict[str, Any], root: Path = PROJECT_ROOT, parameters: Mapping[str, str] | None = None
) -> list[FunctionSpec]:
    """The functions that exist for these parameter values (default: the template's defaults): a function
    whose Condition is false is not deployed, so it is not run locally either."""
    globals_ = template.get("Globals", {}).get("Function", {})
    global_env = globals_.get("Environment", {}).get("Variables", {})
    conditions = evaluate_conditions(template, template_parameters(template, parameters))
    specs: list[FunctionSpec] = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        if not condition_holds(resource, conditions):
            continue
        props = resource.get("Properties", {})
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        spec = FunctionSpec(
            logical_id=logical_id,
            code_uri=root / props["CodeUri"],
            handler=props.get("Handler", globals_.get("Handler", "")),
            timeout_seconds=int(props.get("Timeout", globals_.get("Timeout", 3))),
            memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            environment=env,
        )
        for event in props.get("Events", {}).values():
            _add_trigger(spec, event.get("Type"), event.get("Properties", {}))
        specs.append(spec)
    return specs


def _add_trigger(spec: FunctionSpec, event_type: str | None, props: dict[str, Any]) -> None:
    if event_type == "HttpApi":
        spec.routes.append(HttpRoute(method=str(props["Method"]).upper(), path=str(props["Path"])))
    elif event_type == "SQS":
        spec.sqs_triggers.append(
            SqsTrigger(
                queue=props["Queue"],
                batch_size=int(props.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
                maximum_concurrency=props.get("ScalingConfig", {}).get("MaximumConcurrency"),
            )
        )
    elif event_type in ("ScheduleV2", "Schedule"):
        spec.schedules.append(
            ScheduleTrigger(expression=props.get("ScheduleExpression", props.get("Schedule")))
        )
    else:
        raise TemplateError(f"{spec.logical_id}: event type {event_type!r} is not emulated locally")

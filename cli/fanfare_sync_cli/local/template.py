"""Read template.yaml the way the local runtime needs it: functions, their routes, queues and secrets.

Local and deployed cannot drift because everything here is read from the same template SAM deploys.
"""

from __future__ import annotations

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


def function_specs(template: dict[str, Any], root: Path = PROJECT_ROOT) -> list[FunctionSpec]:
    globals_ = template.get("Globals", {}).get("Function", {})
    global_env = globals_.get("Environment", {}).get("Variables", {})
    specs: list[FunctionSpec] = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
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

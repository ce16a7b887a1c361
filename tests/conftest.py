"""Shared fixtures: one moto server per test session (real AWS APIs over HTTP), fresh resources per test."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack, provision
from fanfare_sync_cli.local.stack import LocalSettings
from fanfare_sync_cli.local.template import PROJECT_ROOT, FunctionSpec, function_specs, load_template

EVENTS_DIR = PROJECT_ROOT / "events"
_stack_numbers = itertools.count(1)

# Powertools must not try to reach real CloudWatch or X-Ray from tests.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "fanfare-sync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "FanfareSync")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log").start()
    # Every boto3 client made in this process (handlers' included) goes to moto, never to AWS.
    previous = {name: os.environ.get(name) for name in server.environment()}
    os.environ.update(server.environment())
    yield server
    server.stop()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def aws_stack(moto_server: MotoServer, template: dict[str, Any]) -> ProvisionedStack:
    """The template's queues, tables and secrets, freshly created in moto under a stack name of their own."""
    clients = {name: moto_server.client(name) for name in ("sqs", "dynamodb", "secretsmanager", "sns")}
    return provision(
        clients,
        template,
        f"test-{next(_stack_numbers)}",
        LOCAL_REGION,
        LocalSettings().secret_values(),
    )


@pytest.fixture
def load_function(
    aws_stack: ProvisionedStack, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ModuleType]:
    """Import a function's app.py as a fresh module, with that function's template environment set.

    `env_overrides` replaces resolved variables (e.g. a queue URL that does not exist).
    """
    specs = {spec.logical_id: spec for spec in function_specs(template)}

    def load(logical_id: str, **env_overrides: str) -> ModuleType:
        spec: FunctionSpec = specs[logical_id]
        for name, value in aws_stack.resolve(spec.environment).items():
            monkeypatch.setenv(name, str(value))
        for name, value in env_overrides.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", logical_id)
        module_name = f"function_{logical_id}_{next(_stack_numbers)}"
        loader_spec = importlib.util.spec_from_file_location(module_name, spec.module_path)
        assert loader_spec is not None
        assert loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        loader_spec.loader.exec_module(module)
        return module

    return load


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return event


def drain_queue(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue (bodies parsed), received once with visibility long enough to count."""
    bodies: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60)
        messages = batch.get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(message["Body"]) for message in messages)


def queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture
def lambda_context() -> Any:
    from fanfare_sync_cli.local.lambda_context import LocalLambdaContext

    return LocalLambdaContext(function_name="test-function")


def project_path(*parts: str) -> Path:
    return PROJECT_ROOT.joinpath(*parts)


@pytest.fixture
def captured_logs() -> Iterator[Callable[[], str]]:
    """The JSON log lines the functions emit, formatted exactly as Lambda would ship them.

    Powertools binds its handler to the stdout of the first Logger created in the process, which pytest's
    capsys does not see after the first test; this adds a handler with the same formatter instead.
    """
    import io
    import logging

    service_logger = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatters = [h.formatter for h in service_logger.handlers if h.formatter is not None]
    if formatters:
        handler.setFormatter(formatters[0])
    service_logger.addHandler(handler)
    yield stream.getvalue
    service_logger.removeHandler(handler)

"""Reliability scenarios run on a stack whose every secret is a canary, and record a row for the README."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack, provision
from fanfare_sync_cli.sandbox import FanfareSandbox
from tests.reliability.harness import (
    CANARY_FANFARE_KEY,
    CANARY_FANFARE_ORG,
    Stack,
    build_stack,
    canary_secret_values,
)
from tests.reliability.report import REPORT

_numbers = itertools.count(1)


@pytest.fixture
def aws_stack(moto_server: MotoServer, template: dict[str, object]) -> ProvisionedStack:
    """Overrides the suite-wide fixture: the same template resources, with canary secrets."""
    clients = {name: moto_server.client(name) for name in ("sqs", "dynamodb", "secretsmanager", "sns")}
    return provision(clients, template, f"reliability-{next(_numbers)}", LOCAL_REGION, canary_secret_values())


@pytest.fixture
def sandbox() -> Iterator[FanfareSandbox]:
    # hold_seconds bounds a "timeout" fault: longer than the harness client's 1 s read timeout.
    with FanfareSandbox(org_id=CANARY_FANFARE_ORG, secret_key=CANARY_FANFARE_KEY, hold_seconds=3) as running:
        yield running


@pytest.fixture
def stack(
    load_function: Callable[..., ModuleType],
    aws_stack: ProvisionedStack,
    moto_server: MotoServer,
    sandbox: FanfareSandbox,
) -> Stack:
    return build_stack(load_function, aws_stack, moto_server, sandbox)


@pytest.fixture(scope="session")
def report() -> object:
    return REPORT

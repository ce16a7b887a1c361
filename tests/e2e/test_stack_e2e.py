"""End to end through a whole stack: signed webhooks in at the real URLs, admissions completed at the Fanfare
sandbox, order records in DynamoDB, metrics in CloudWatch; forged webhooks refused.

One suite, two targets, so the deployed-stack tests cannot rot:

* `local`, always (part of `make test`): the local stack (`LocalStack`, moto server, gateway on port 0).
* `deployed`, when AWS_SAM_STACK_NAME names a stack deployed with DeployFanfareSandbox=true (staging, as
  `make deploy` makes it): its webhook URLs, sandbox URL, secrets and table come from the stack outputs,
  with the usual AWS credentials (AWS_PROFILE / AWS_REGION). Without AWS_SAM_STACK_NAME it is skipped, and
  the skip says why.

Every order and admission is new (random ids), so the suite can run against a long-lived staging stack
without colliding with an earlier run, and it never resets the shared sandbox. Waits poll for a state with
a deadline (AWS: cold starts, and CloudWatch shows EMF metrics a minute or more after they are written).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import httpx
import pytest

from fanfare_sync.adapters.orders_table import OrdersTable
from fanfare_sync.logic.verify_signature import decode_woocommerce_secret, parse_accepted_secrets
from fanfare_sync.models.orders import OrderKey
from fanfare_sync_cli.local.stack import LocalSettings, LocalStack
from fanfare_sync_cli.samples import (
    SampleAdmission,
    SampleOrder,
    shopify_headers,
    shopify_order,
    to_body,
    woocommerce_headers,
    woocommerce_order,
    woocommerce_ping,
)
from fanfare_sync_cli.targets import deployed_target

pytestmark = pytest.mark.slow

STACK_ENV = "AWS_SAM_STACK_NAME"
SHOPIFY_SHOP = "fanfare-sync-e2e.myshopify.com"
WOOCOMMERCE_SOURCE = "https://e2e.fanfare-sync.test/"
WOOCOMMERCE_SHOP = "e2e.fanfare-sync.test"
SERVICE = "fanfare-sync"

T = TypeVar("T")
MetricSum = Callable[[str, dict[str, str], datetime], float]


@dataclass
class Target:
    """Everything a test needs to know about the stack under test; built the same way for both kinds."""

    name: str
    webhook_urls: dict[str, str]
    shopify_secret: str
    woocommerce_secret: str
    sandbox_url: str
    sandbox_headers: dict[str, str]  # the Fanfare credentials: the deployed sandbox's control API needs them
    orders: OrdersTable
    metric_sum: MetricSum  # sum of a FanfareSync metric with exactly these dimensions, since a time
    completion_patience: float
    metric_patience: float
    poll_every: float


def _current(secret_value: str) -> str:
    # During a rotation the secret holds several; `fanfare-sync secrets set` puts the newest first.
    accepted = parse_accepted_secrets(secret_value)
    assert accepted, "the webhook secret is empty"
    return accepted[0]


def _credentials_headers(secret_value: str) -> dict[str, str]:
    credentials = json.loads(secret_value)
    return {"X-Organization-Id": credentials["orgId"], "X-Secret-Key": credentials["secretKey"]}


def local_target(stack: LocalStack) -> Target:
    assert stack.resources is not None
    assert stack.sandbox is not None
    secrets_manager = stack.moto.client("secretsmanager")

    def secret(logical_id: str) -> str:
        return str(secrets_manager.get_secret_value(SecretId=stack.resources.ref(logical_id))["SecretString"])  # type: ignore[union-attr]

    def metric_sum(metric: str, dimensions: dict[str, str], since: datetime) -> float:
        # The local runtime collects the functions' EMF lines as CloudWatch would (what its alarms read).
        key = ("FanfareSync", metric, frozenset(dimensions.items()))
        return sum(stack.metrics.values(key, since.timestamp(), time.time() + 1))

    return Target(
        name="local",
        webhook_urls={
            "shopify": stack.url("/webhooks/shopify"),
            "woocommerce": stack.url("/webhooks/woocommerce"),
        },
        shopify_secret=_current(secret("ShopifyWebhookSecret")),
        woocommerce_secret=_current(secret("WooCommerceWebhookSecret")),
        sandbox_url=stack.sandbox.base_url,
        sandbox_headers=_credentials_headers(secret("FanfareCredentialsSecret")),
        orders=OrdersTable(stack.resources.ref("OrdersTable"), stack.moto.client("dynamodb")),
        metric_sum=metric_sum,
        completion_patience=30,
        metric_patience=15,
        poll_every=0.1,
    )


def aws_target(stack_name: str) -> Target:
    try:
        stack = deployed_target(stack_name, region=None, profile=None)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in stack.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0][
                "Outputs"
            ]
        }
    except click.ClickException as error:
        pytest.fail(f"{STACK_ENV}={stack_name}: {error.message}")
    if "FanfareSandboxUrl" not in outputs:
        pytest.fail(
            f"stack {stack_name} has no FanfareSandboxUrl output: deploy it with DeployFanfareSandbox=true "
            "(staging's default in samconfig.toml), or the tests would complete admissions at a real Fanfare"
        )
    secrets_manager = stack.client("secretsmanager")
    cloudwatch = stack.client("cloudwatch")

    def secret(logical_id: str) -> str:
        return str(secrets_manager.get_secret_value(SecretId=stack.resource(logical_id))["SecretString"])

    def metric_sum(metric: str, dimensions: dict[str, str], since: datetime) -> float:
        response = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "FanfareSync",
                            "MetricName": metric,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=since - timedelta(minutes=1),
            EndTime=datetime.now(UTC) + timedelta(minutes=1),
        )
        return float(sum(response["MetricDataResults"][0]["Values"]))

    return Target(
        name=f"stack {stack_name}",
        webhook_urls={platform: stack.webhook_url(platform) for platform in ("shopify", "woocommerce")},
        shopify_secret=_current(secret("ShopifyWebhookSecret")),
        woocommerce_secret=decode_woocommerce_secret(_current(secret("WooCommerceWebhookSecret"))),
        sandbox_url=outputs["FanfareSandboxUrl"].rstrip("/"),
        sandbox_headers=_credentials_headers(secret("FanfareCredentialsSecret")),
        orders=OrdersTable(stack.resource("OrdersTable"), stack.client("dynamodb")),
        metric_sum=metric_sum,
        # Cold starts of three functions; then CloudWatch takes a minute or more to show EMF metrics.
        completion_patience=180,
        metric_patience=420,
        poll_every=5,
    )


@pytest.fixture(scope="module", params=["local", "deployed"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "local":
        with LocalStack(LocalSettings(port=0, state_dir=None, workers_per_function=1)) as stack:
            yield local_target(stack)
        return
    stack_name = os.environ.get(STACK_ENV)
    if not stack_name:
        pytest.skip(
            f"deployed-stack run skipped: set {STACK_ENV} to a stack deployed with DeployFanfareSandbox=true "
            "(`make deploy`), e.g. `AWS_SAM_STACK_NAME=fanfare-sync-staging AWS_REGION=<region> "
            ".venv/bin/pytest tests/e2e`, to run this same suite against it"
        )
    yield aws_target(stack_name)


# ---------------------------------------------------------------------------------------------- helpers
def new_order() -> SampleOrder:
    # Random, so runs against a long-lived staging stack never meet an earlier run's orders or admissions.
    order_id = 10**15 + secrets.randbelow(9 * 10**15)
    token = uuid.uuid4().hex[:12]
    return SampleOrder(
        order_id=order_id, admissions=(SampleAdmission(f"queue_e2e_{token}", "queue", f"cons_{token}"),)
    )


def post(url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(url, headers=headers, content=body, timeout=30)


def send_shopify(target: Target, order: SampleOrder, secret: str | None = None) -> httpx.Response:
    body = to_body(shopify_order(order))
    headers = shopify_headers(
        "orders/paid", body, secret or target.shopify_secret, webhook_id=str(uuid.uuid4()), shop=SHOPIFY_SHOP
    )
    return post(target.webhook_urls["shopify"], headers, body)


def send_woocommerce(target: Target, order: SampleOrder, secret: str | None = None) -> httpx.Response:
    body = to_body(woocommerce_order(order, status="processing"))
    headers = woocommerce_headers(
        "order.updated", body, secret or target.woocommerce_secret, source=WOOCOMMERCE_SOURCE
    )
    return post(target.webhook_urls["woocommerce"], headers, body)


def eventually(what: str, patience: float, every: float, probe: Callable[[], T | None]) -> T:
    """The probe's first non-None answer; fails, saying what never happened, after `patience` seconds."""
    deadline = time.monotonic() + patience
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {patience:g} s")
        time.sleep(every)


def sandbox_completions(target: Target) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{target.sandbox_url}/_sandbox/completions", headers=target.sandbox_headers, timeout=30
    )
    assert response.status_code == 200, response.text
    completions: list[dict[str, Any]] = response.json()["completions"]
    return completions


def completions_of(target: Target, order: SampleOrder) -> list[dict[str, Any]]:
    return [
        c
        for c in sandbox_completions(target)
        if (c.get("metadata") or {}).get("orderId") == str(order.order_id)
    ]


def wait_for_completion(target: Target, order: SampleOrder) -> dict[str, Any]:
    [completion] = eventually(
        f"order {order.order_id} completed at the sandbox of {target.name}",
        target.completion_patience,
        target.poll_every,
        lambda: completions_of(target, order) or None,
    )
    return completion


def wait_for_synced_record(target: Target, key: OrderKey) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    def synced() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        record, history = target.orders.order_with_history(key)
        if record is None or record.get("syncStatus") != "synced":
            return None
        return record, history

    # The sandbox answers before the consumer writes the record: wait for it, not a clock.
    return eventually(
        f"order {key.order_id} synced in the orders table",
        target.completion_patience,
        target.poll_every,
        synced,
    )


# ---------------------------------------------------------------------------------------------- the tests
def test_signed_shopify_order_is_completed_recorded_and_counted(target: Target) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    order = new_order()
    [admission] = order.admissions

    response = send_shopify(target, order)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    completion = wait_for_completion(target, order)
    assert (completion["distribution_type"], completion["distribution_id"], completion["consumer_id"]) == (
        "queue",
        admission.distribution_id,
        admission.consumer_id,
    )
    assert completion["metadata"]["orderAmount"] == "199.00"
    assert completion["metadata"]["platform"] == "shopify"
    record, history = wait_for_synced_record(target, OrderKey("shopify", SHOPIFY_SHOP, str(order.order_id)))
    assert history == []  # nothing went wrong: the order item says it all
    assert record["admissions"][0]["completion"]["statusCode"] in (200, 201)
    assert record["amount"] == "199.00"

    # The metrics the dashboard and alarms read
    queued = {"service": SERVICE, "platform": "shopify", "outcome": "queued"}
    for metric, dimensions in [("Webhooks", queued), ("Completions", {"service": SERVICE})]:
        total = eventually(
            f"FanfareSync/{metric} {dimensions} reported by {target.name}",
            target.metric_patience,
            target.poll_every if target.name == "local" else 20,
            lambda m=metric, d=dimensions: target.metric_sum(m, d, started) or None,  # type: ignore[misc]
        )
        assert total >= 1


def test_signed_woocommerce_order_is_completed_and_recorded(target: Target) -> None:
    order = new_order()

    response = send_woocommerce(target, order)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    completion = wait_for_completion(target, order)
    assert completion["metadata"]["platform"] == "woocommerce"
    record, _ = wait_for_synced_record(target, OrderKey("woocommerce", WOOCOMMERCE_SHOP, str(order.order_id)))
    assert record["syncStatus"] == "synced"


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_forged_webhook_is_401_and_reaches_neither_fanfare_nor_the_table(
    target: Target, platform: str
) -> None:
    send = send_shopify if platform == "shopify" else send_woocommerce
    shop = SHOPIFY_SHOP if platform == "shopify" else WOOCOMMERCE_SHOP
    forged = new_order()

    response = send(target, forged, "guessed-secret")

    assert response.status_code == 401
    assert response.json()["status"] == "unauthorized"
    # A genuine order sent after it goes all the way through, so the forged one had every chance to.
    genuine = new_order()
    assert send(target, genuine).status_code == 200
    wait_for_completion(target, genuine)
    assert completions_of(target, forged) == []
    assert target.orders.order_with_history(OrderKey(platform, shop, str(forged.order_id))) == (None, [])


def test_woocommerce_creation_ping_is_exactly_200(target: Target) -> None:
    headers, body = woocommerce_ping(webhook_id=4242)

    response = post(target.webhook_urls["woocommerce"], headers, body)

    assert response.status_code == 200
    assert response.json()["status"] == "ping"

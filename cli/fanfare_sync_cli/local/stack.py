"""The whole bundle on one machine: moto server as AWS, the template's resources, functions and routes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanfare_sync_cli.local.function_worker import FunctionPool
from fanfare_sync_cli.local.gateway import LocalGateway
from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack, provision
from fanfare_sync_cli.local.sqs_poller import SqsEventSource
from fanfare_sync_cli.local.template import (
    DEFAULT_TEMPLATE,
    PROJECT_ROOT,
    FunctionSpec,
    function_specs,
    load_template,
)
from fanfare_sync_cli.sandbox import FanfareSandbox

STATE_DIR = PROJECT_ROOT / ".local"

# Documented local defaults (README "Run it locally"); the events in events/ are signed with these.
DEFAULT_SHOPIFY_WEBHOOK_SECRET = "local-shopify-webhook-secret"  # noqa: S105 - documented local default
DEFAULT_WC_WEBHOOK_SECRET = "local-woocommerce-webhook-secret"  # noqa: S105 - documented local default
DEFAULT_FANFARE_ORG_ID = "org_local"
DEFAULT_FANFARE_SECRET_KEY = "sk_test_local"  # noqa: S105 - the local sandbox's key


@dataclass
class LocalSettings:
    host: str = "127.0.0.1"
    port: int = 3000
    moto_port: int | None = None
    stack_name: str = "fanfare-sync-local"
    shopify_webhook_secret: str = DEFAULT_SHOPIFY_WEBHOOK_SECRET
    wc_webhook_secret: str = DEFAULT_WC_WEBHOOK_SECRET
    fanfare_api_url: str | None = None
    fanfare_org_id: str = DEFAULT_FANFARE_ORG_ID
    fanfare_secret_key: str = DEFAULT_FANFARE_SECRET_KEY
    workers_per_function: int = 2
    template_path: Path = DEFAULT_TEMPLATE
    state_dir: Path | None = STATE_DIR
    parameter_overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, **overrides: Any) -> LocalSettings:
        """The guide's variable names, with local defaults when unset."""
        env = os.environ
        settings = cls(
            port=int(env.get("PORT", "3000")),
            moto_port=int(env["MOTO_PORT"]) if env.get("MOTO_PORT") else None,
            shopify_webhook_secret=env.get("SHOPIFY_WEBHOOK_SECRET") or DEFAULT_SHOPIFY_WEBHOOK_SECRET,
            wc_webhook_secret=env.get("WC_WEBHOOK_SECRET") or DEFAULT_WC_WEBHOOK_SECRET,
            fanfare_api_url=env.get("FANFARE_API_URL") or None,
            fanfare_org_id=env.get("FANFARE_ORG_ID") or DEFAULT_FANFARE_ORG_ID,
            fanfare_secret_key=env.get("FANFARE_SECRET_KEY") or DEFAULT_FANFARE_SECRET_KEY,
        )
        for name, value in overrides.items():
            if value is not None:
                setattr(settings, name, value)
        return settings

    def secret_values(self) -> dict[str, str]:
        """Values for the template's secrets, by logical id (the deployed stack's are set by the operator)."""
        return {
            "ShopifyWebhookSecret": self.shopify_webhook_secret,
            "WooCommerceWebhookSecret": self.wc_webhook_secret,
            "FanfareCredentialsSecret": json.dumps(
                {"orgId": self.fanfare_org_id, "secretKey": self.fanfare_secret_key}
            ),
        }


class LocalStack:
    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        log_path = settings.state_dir / "moto.log" if settings.state_dir else None
        self.moto = MotoServer(host=settings.host, port=settings.moto_port, log_path=log_path)
        self.template = load_template(settings.template_path)
        self.functions = function_specs(self.template)
        self.resources: ProvisionedStack | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.gateway: LocalGateway | None = None
        self.event_sources: list[SqsEventSource] = []
        # The Fanfare sandbox stands in for Fanfare unless FANFARE_API_URL points elsewhere.
        self.sandbox: FanfareSandbox | None = None
        if settings.fanfare_api_url is None:
            self.sandbox = FanfareSandbox(
                host=settings.host, org_id=settings.fanfare_org_id, secret_key=settings.fanfare_secret_key
            )

    @property
    def fanfare_api_url(self) -> str:
        if self.sandbox is not None:
            return self.sandbox.base_url
        assert self.settings.fanfare_api_url is not None
        return self.settings.fanfare_api_url

    def start(self) -> LocalStack:
        if self.settings.state_dir:
            self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.moto.start()
        try:
            if self.sandbox is not None:
                self.sandbox.start()
            clients = {name: self.moto.client(name) for name in ("sqs", "dynamodb", "secretsmanager", "sns")}
            self.resources = provision(
                clients,
                self.template,
                self.settings.stack_name,
                LOCAL_REGION,
                self.settings.secret_values(),
                {"FanfareApiUrl": self.fanfare_api_url, **self.settings.parameter_overrides},
            )
            for spec in self.functions:
                pool = FunctionPool(spec, self.function_environment(spec), self.settings.workers_per_function)
                pool.warm()
                self.pools[spec.logical_id] = pool
            routes = {
                (route.method, route.path): self.pools[spec.logical_id].invoke
                for spec in self.functions
                for route in spec.routes
            }
            self.gateway = LocalGateway(routes, host=self.settings.host, port=self.settings.port).start()
            self._start_event_sources(clients["sqs"])
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_event_sources(self, sqs: Any) -> None:
        assert self.resources is not None
        by_arn = {r.attributes.get("Arn"): r for r in self.resources.resources.values()}
        for spec in self.functions:
            for trigger in spec.sqs_triggers:
                queue = by_arn[self.resources.resolve(trigger.queue)]
                # MaximumConcurrency caps pollers; locally the warm workers are the tighter cap.
                limit = int(
                    self.resources.resolve(trigger.maximum_concurrency) or self.settings.workers_per_function
                )
                source = SqsEventSource(
                    sqs,
                    queue.ref,
                    queue.attributes["Arn"],
                    LOCAL_REGION,
                    self.pools[spec.logical_id].invoke,
                    batch_size=trigger.batch_size,
                    partial_failures=trigger.report_batch_item_failures,
                    concurrency=max(1, min(limit, self.settings.workers_per_function)),
                    name=f"{spec.logical_id}<-{queue.logical_id}",
                )
                self.event_sources.append(source.start())

    def function_environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's template environment, resolved against the local resources, pointed at moto."""
        assert self.resources is not None
        resolved = {name: str(value) for name, value in self.resources.resolve(spec.environment).items()}
        return {
            **self.moto.environment(),
            **resolved,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        }

    def url(self, path: str) -> str:
        assert self.gateway is not None
        return f"{self.gateway.url}{path}"

    def summary(self) -> list[str]:
        assert self.resources is not None
        assert self.gateway is not None
        lines = [f"moto server (local AWS): {self.moto.endpoint_url}  region {LOCAL_REGION}"]
        if self.sandbox is not None:
            url = self.sandbox.base_url
            lines.append(f"Fanfare sandbox: {url}  (inject faults: PUT {url}/_sandbox/faults)")
        else:
            lines.append(f"Fanfare API: {self.fanfare_api_url}")
        for spec in self.functions:
            for route in spec.routes:
                lines.append(f"{route.method} {self.gateway.url}{route.path}  -> {spec.logical_id}")
        for logical_id, resource in self.resources.resources.items():
            lines.append(f"{resource.type.split('::')[-1]:<7} {logical_id}: {resource.ref}")
        for source in self.event_sources:
            lines.append(f"polling {source.name}")
        shopify = _describe_secret(self.settings.shopify_webhook_secret, DEFAULT_SHOPIFY_WEBHOOK_SECRET)
        woocommerce = _describe_secret(self.settings.wc_webhook_secret, DEFAULT_WC_WEBHOOK_SECRET)
        lines.append(f"SHOPIFY_WEBHOOK_SECRET={shopify}  WC_WEBHOOK_SECRET={woocommerce}")
        skipped = ", ".join(f"{name} ({why})" for name, why in self.resources.skipped.items())
        lines.append(f"not provisioned in moto: {skipped}")
        return lines

    def _write_state(self) -> None:
        """Where the CLI finds the running local stack."""
        if not self.settings.state_dir or self.resources is None or self.gateway is None:
            return
        state = {
            "pid": os.getpid(),
            "awsEndpointUrl": self.moto.endpoint_url,
            "region": LOCAL_REGION,
            "gatewayUrl": self.gateway.url,
            "fanfareApiUrl": self.fanfare_api_url,
            "stackName": self.settings.stack_name,
            "resources": {name: resource.ref for name, resource in self.resources.resources.items()},
        }
        (self.settings.state_dir / "stack.json").write_text(
            json.dumps(state, indent=2) + "\n", encoding="utf-8"
        )

    def stop(self) -> None:
        for source in self.event_sources:
            source.stop()
        self.event_sources.clear()
        if self.gateway:
            self.gateway.stop()
            self.gateway = None
        for pool in self.pools.values():
            pool.stop()
        self.pools.clear()
        if self.sandbox is not None:
            self.sandbox.stop()
        self.moto.stop()
        if self.settings.state_dir:
            (self.settings.state_dir / "stack.json").unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _describe_secret(value: str, default: str) -> str:
    # The documented defaults are printed so curl examples work; a secret of the operator's own never is.
    return value if value == default else "(set from the environment, not shown)"

"""The whole bundle on one machine: moto server as AWS, the template's resources, functions and routes."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanfare_sync_cli.local.alarms import AlarmSpec, LocalAlarms, MetricStore
from fanfare_sync_cli.local.function_worker import FunctionPool, Invocation
from fanfare_sync_cli.local.gateway import LocalGateway
from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack, provision
from fanfare_sync_cli.local.scheduler import LocalSchedule, rate_seconds
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
    # Run every schedule this often instead of at its template rate; alarm periods shrink to match.
    schedule_every_seconds: float | None = None
    # Stale-order threshold for the local monitor (the template's StaleAfterMinutes otherwise).
    stale_after_seconds: float | None = None
    # Seconds between the one-line status summaries `fanfare-sync local` prints (0: none).
    status_every_seconds: float = 0
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
        self.schedules: list[LocalSchedule] = []
        self.metrics = MetricStore()
        self.alarms: LocalAlarms | None = None
        self.alarms_not_evaluated: dict[str, str] = {}
        self.webhook_statuses: dict[int, int] = {}
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
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
                {
                    "FanfareApiUrl": self.fanfare_api_url,
                    **self._stale_override(),
                    **self.settings.parameter_overrides,
                },
            )
            for spec in self.functions:
                pool = FunctionPool(
                    spec,
                    self.function_environment(spec),
                    self.settings.workers_per_function,
                    on_metrics=self.metrics.record_emf,
                    on_invocation=self._invocation_observer(spec.logical_id),
                )
                pool.warm()
                self.pools[spec.logical_id] = pool
            routes = {
                (route.method, route.path): self.pools[spec.logical_id].invoke
                for spec in self.functions
                for route in spec.routes
            }
            self.gateway = LocalGateway(
                routes, host=self.settings.host, port=self.settings.port, on_response=self._observe_response
            ).start()
            self._start_event_sources(clients["sqs"])
            time_scale = self._start_schedules()
            self._start_alarms(time_scale, clients["sqs"], clients["sns"])
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

    def _stale_override(self) -> dict[str, str]:
        if self.settings.stale_after_seconds is None:
            return {}
        return {"StaleAfterMinutes": f"{self.settings.stale_after_seconds / 60:g}"}

    def _invocation_observer(self, function_name: str) -> Any:
        def observe(invocation: Invocation) -> None:
            # What AWS/Lambda reports for the function: one invocation, and an error if it failed.
            self.metrics.record("AWS/Lambda", "Invocations", {"FunctionName": function_name}, 1)
            if invocation.failed:
                self.metrics.record("AWS/Lambda", "Errors", {"FunctionName": function_name}, 1)

        return observe

    def _observe_response(self, status: int) -> None:
        self.webhook_statuses[status] = self.webhook_statuses.get(status, 0) + 1
        dimensions = {"ApiId": "local", "Stage": "$default"}
        self.metrics.record("AWS/ApiGateway", "Count", dimensions, 1)
        self.metrics.record("AWS/ApiGateway", "5xx", dimensions, 1 if status >= 500 else 0)
        self.metrics.record("AWS/ApiGateway", "4xx", dimensions, 1 if 400 <= status < 500 else 0)

    def _start_schedules(self) -> float:
        """Start every schedule; returns how much faster than the template they run (for alarm periods)."""
        assert self.resources is not None
        time_scale = 1.0
        for spec in self.functions:
            for schedule in spec.schedules:
                template_every = rate_seconds(str(self.resources.resolve(schedule.expression)))
                every = self.settings.schedule_every_seconds or template_every
                time_scale = min(time_scale, every / template_every)
                self.schedules.append(
                    LocalSchedule(spec.logical_id, every, self.pools[spec.logical_id].invoke).start()
                )
        return time_scale

    def _start_alarms(self, time_scale: float, sqs: Any, sns: Any) -> None:
        assert self.resources is not None
        specs = []
        for logical_id, resource in self.template["Resources"].items():
            if resource.get("Type") != "AWS::CloudWatch::Alarm":
                continue
            spec = AlarmSpec.from_template(logical_id, self.resources.resolve(resource["Properties"]))
            if (spec.namespace, spec.metric) == ("AWS/SQS", "ApproximateAgeOfOldestMessage"):
                self.alarms_not_evaluated[logical_id] = "moto does not report the age of the oldest message"
                continue
            specs.append(spec)
        queue_urls = {r.attributes.get("QueueName"): r.ref for r in self.resources.resources.values()}

        def notify(spec: AlarmSpec, state: str, line: str) -> None:
            print(line, flush=True)
            for topic in spec.actions:
                sns.publish(TopicArn=topic, Subject=f"{spec.name} {state}"[:100], Message=line)

        self.alarms = LocalAlarms(specs, self.metrics, time_scale=time_scale, notify=notify)
        depth_queues = {
            spec.dimensions["QueueName"]
            for spec in specs
            if (spec.namespace, spec.metric) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        }

        def watch() -> None:
            ticks = 0
            while not self._watch_stop.wait(1):
                ticks += 1
                for name in depth_queues:
                    attributes = sqs.get_queue_attributes(
                        QueueUrl=queue_urls[name], AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]
                    self.metrics.record(
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        {"QueueName": name},
                        float(attributes["ApproximateNumberOfMessages"]),
                    )
                assert self.alarms is not None
                self.alarms.evaluate()
                every = self.settings.status_every_seconds
                if every and ticks % max(1, int(every)) == 0:
                    print(self.status_line(), flush=True)

        self._watcher = threading.Thread(target=watch, name="local-alarms", daemon=True)
        self._watcher.start()

    def status_line(self) -> str:
        """One line for an operator watching `make run`."""
        statuses = self.webhook_statuses
        accepted = sum(n for code, n in statuses.items() if code < 300)
        rejected = sum(n for code, n in statuses.items() if code == 401)
        completions = self.metrics.total("FanfareSync", "Completions")
        retries = self.metrics.total("FanfareSync", "CompletionRetries")
        stale = self.metrics.values(
            ("FanfareSync", "StaleOrders", frozenset({("service", "fanfare-sync")})), 0, 1e12
        )
        firing = ", ".join(self.alarms.firing()) if self.alarms else ""
        return (
            f"[status] webhooks {sum(statuses.values())} (2xx {accepted}, 401 {rejected}) · "
            f"completions {completions:g} · retries {retries:g} · "
            f"stale orders {stale[-1] if stale else 0:g} · alarms firing: {firing or 'none'}"
        )

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
        for schedule in self.schedules:
            lines.append(f"schedule {schedule.name} every {schedule.every_seconds:g} s")
        if self.alarms is not None:
            names = ", ".join(self.alarms.states)
            lines.append(f"alarms evaluated locally (time scale {self.alarms.time_scale:g}): {names}")
        for name, why in self.alarms_not_evaluated.items():
            lines.append(f"alarm not evaluated locally: {name} ({why})")
        shopify = _describe_secret(self.settings.shopify_webhook_secret, DEFAULT_SHOPIFY_WEBHOOK_SECRET)
        woocommerce = _describe_secret(self.settings.wc_webhook_secret, DEFAULT_WC_WEBHOOK_SECRET)
        lines.append(f"SHOPIFY_WEBHOOK_SECRET={shopify}  WC_WEBHOOK_SECRET={woocommerce}")
        by_reason: dict[str, list[str]] = {}
        for name, why in self.resources.skipped.items():
            by_reason.setdefault(why, []).append(name)
        for why, skipped in by_reason.items():
            lines.append(f"not in moto ({why}): {', '.join(skipped)}")
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
        self._watch_stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for schedule in self.schedules:
            schedule.stop()
        self.schedules.clear()
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

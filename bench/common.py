"""What every benchmark shares: console output, statistics, the local AWS, handlers loaded in-process.

Handlers are loaded the way `tests/conftest.py` loads them: each function's `app.py` imported as a fresh
module with that function's environment from `template.yaml`, resolved against resources created in a moto
server subprocess, so boto3 goes over HTTP exactly as it does on Lambda.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import math
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from fanfare_sync_cli.local.gateway import build_http_api_event
from fanfare_sync_cli.local.lambda_context import LocalLambdaContext
from fanfare_sync_cli.local.moto_server import LOCAL_REGION, MotoServer
from fanfare_sync_cli.local.provision import ProvisionedStack, provision
from fanfare_sync_cli.local.sqs_poller import sqs_lambda_record
from fanfare_sync_cli.local.stack import (
    DEFAULT_FANFARE_ORG_ID,
    DEFAULT_FANFARE_SECRET_KEY,
    DEFAULT_SHOPIFY_WEBHOOK_SECRET,
    LocalSettings,
)
from fanfare_sync_cli.local.template import PROJECT_ROOT, FunctionSpec, function_specs, load_template
from fanfare_sync_cli.samples import SampleAdmission, SampleOrder, shopify_headers, shopify_order, to_body
from fanfare_sync_cli.sandbox import FanfareSandbox

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
README = PROJECT_ROOT / "README.md"
LAYER_PATH = PROJECT_ROOT / "layers" / "common"

INGEST_FUNCTION = "ShopifyWebhookFunction"
CONSUMER_FUNCTION = "CompleteAdmissionFunction"
SHOPIFY_ROUTE = "/webhooks/shopify"
SHOPIFY_SECRET = DEFAULT_SHOPIFY_WEBHOOK_SECRET
# The "realistic 5 KB Shopify orders/paid": extra line items are added until the body reaches it.
TARGET_BODY_BYTES = 5 * 1024

# BENCH_QUICK=1 runs every benchmark with a fraction of the repetitions: a smoke test of the harness whose
# figures are too thin to quote, so it never rewrites the README or latest.json.
QUICK = os.environ.get("BENCH_QUICK") == "1"


def scaled(full: int, quick: int) -> int:
    return quick if QUICK else full


# ---------------------------------------------------------------------------------------------- output
class LogSink(io.TextIOBase):
    """Stands in for the handlers' stdout: counts what they log (CloudWatch Logs bills it) and drops it.

    Lambda ships a function's stdout to CloudWatch; here it must neither flood the terminal nor cost more
    than a pipe write, so it is counted and discarded.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.bytes = 0
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        size = len(text.encode("utf-8", "surrogateescape"))
        with self._lock:
            self.bytes += size
            self.lines += text.count("\n")
        return len(text)

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.bytes, self.lines


LOG_SINK = LogSink()


class _Console:
    """Where progress goes: the terminal, even after fd 1 is pointed elsewhere by capture_output()."""

    stream: TextIO = sys.stdout


def capture_output() -> None:
    """Keep the terminal for progress; send everything else written to stdout to LOG_SINK or /dev/null.

    Worker processes of the local stack inherit file descriptor 1, so it is pointed at /dev/null; this
    process's own `print`s (Powertools' EMF metrics, the gateway's access lines) go to LOG_SINK.
    """
    sys.stdout.flush()
    _Console.stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = LOG_SINK


def say(message: str) -> None:
    print(message, file=_Console.stream, flush=True)


def progress(label: str, done: int, total: int, every: int) -> None:
    if done == total or done % every == 0:
        say(f"    {label}: {done}/{total}")


# ---------------------------------------------------------------------------------------------- statistics
def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: with n samples, p99 is the ceil(0.99 n)-th smallest (the max when n < 100)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Distribution:
    n: int
    median: float
    p99: float
    mean: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Distribution:
        return cls(
            n=len(samples),
            median=statistics.median(samples),
            p99=percentile(samples, 99),
            mean=statistics.fmean(samples),
            minimum=min(samples),
            maximum=max(samples),
        )

    def scaled(self, factor: float) -> dict[str, float]:
        """Rounded, in another unit (seconds → ms with 1000), for the JSON results."""
        return {
            "n": self.n,
            "median": round(self.median * factor, 3),
            "p99": round(self.p99 * factor, 3),
            "mean": round(self.mean * factor, 3),
            "min": round(self.minimum * factor, 3),
            "max": round(self.maximum * factor, 3),
        }


def interleaved(
    variants: Sequence[Callable[[], None]], rounds: int, *, between: Callable[[int], None] | None = None
) -> list[list[float]]:
    """Time each variant once per round, rotating which goes first, so drift and noise hit all alike.

    Returns one list of wall-clock seconds per variant. `between(round)` runs untimed after each round.
    """
    samples: list[list[float]] = [[] for _ in variants]
    count = len(variants)
    for round_number in range(rounds):
        for offset in range(count):
            index = (round_number + offset) % count
            started = time.perf_counter()
            variants[index]()
            samples[index].append(time.perf_counter() - started)
        if between is not None:
            between(round_number)
    return samples


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Result:
    """One row of the table. `passed` is None for report-only figures (no target of their own)."""

    key: str
    title: str
    measured: str
    target: str
    passed: bool | None
    figures: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def mark(self) -> str:
        if self.passed is None:
            return "report"
        return "pass" if self.passed else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "measured": self.measured,
            "target": self.target,
            "passed": self.passed,
            "mark": self.mark,
            "figures": self.figures,
            "note": self.note,
        }


# ---------------------------------------------------------------------------------------------- samples
_order_numbers = itertools.count(7_000_000_001)


def next_order_number() -> int:
    """Order ids unique across the whole run: the benchmarks share one orders table."""
    return next(_order_numbers)


_extra_line_items: dict[int, int] = {}


def sized_order(order_id: int, admissions: tuple[SampleAdmission, ...]) -> SampleOrder:
    """A SampleOrder with as many extra line items as it takes to reach TARGET_BODY_BYTES (found once per
    number of admissions: ids of other lengths move the size by a few bytes only)."""
    extra = _extra_line_items.get(len(admissions))
    if extra is None:
        extra = 1
        while extra < 50:
            probe = SampleOrder(order_id=order_id, admissions=admissions, extra_line_items=extra)
            if len(to_body(shopify_order(probe))) >= TARGET_BODY_BYTES:
                break
            extra += 1
        _extra_line_items[len(admissions)] = extra
    return SampleOrder(order_id=order_id, admissions=admissions, extra_line_items=extra)


def fanfare_order(order_id: int) -> SampleOrder:
    """Each order its own admission: the same admission is (rightly) completed only once."""
    admission = SampleAdmission(f"queue_{order_id}", "queue", f"cons_{order_id}")
    return sized_order(order_id, (admission,))


def shopify_request(
    order: SampleOrder, webhook_id: str, secret: str = SHOPIFY_SECRET
) -> tuple[dict[str, str], bytes]:
    body = to_body(shopify_order(order))
    return shopify_headers("orders/paid", body, secret, webhook_id=webhook_id), body


def shopify_event(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) event the local gateway would build for this request."""
    return build_http_api_event("POST", SHOPIFY_ROUTE, "", headers, body, "203.0.113.10")


def vary_message(template_body: str, order_id: int) -> str:
    """A queue message like `template_body` (one the ingest handler produced) for another order/admission."""
    message = json.loads(template_body)
    message["orderId"] = str(order_id)
    message["deliveryId"] = f"wh-{order_id}"
    message["eventId"] = f"evt-wh-{order_id}"
    for index, admission in enumerate(message["admissions"]):
        admission["distributionId"] = f"queue_{order_id}"
        admission["consumerId"] = f"cons_{order_id}_{index}"
    return json.dumps(message, separators=(",", ":"))


def sqs_event(bodies: Sequence[str], queue_arn: str) -> dict[str, Any]:
    """A Lambda SQS event as the event source mapping builds it (receipt handles unused on success)."""
    now = str(int(time.time() * 1000))
    records = []
    for body in bodies:
        message = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": f"bench-{uuid.uuid4().hex}",
            "Body": body,
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now},
            "MessageAttributes": {
                "kind": {"DataType": "String", "StringValue": "order.paid"},
                "platform": {"DataType": "String", "StringValue": "shopify"},
            },
        }
        records.append(sqs_lambda_record(message, queue_arn, LOCAL_REGION))
    return {"Records": records}


# ---------------------------------------------------------------------------------------------- local AWS
class LocalAws:
    """moto server (subprocess), the template's queues, tables and secrets in it, and the Fanfare sandbox."""

    def __init__(self, stack_name: str = "bench") -> None:
        self.stack_name = stack_name
        self.moto = MotoServer()
        self.sandbox = FanfareSandbox(org_id=DEFAULT_FANFARE_ORG_ID, secret_key=DEFAULT_FANFARE_SECRET_KEY)
        self.template = load_template()
        self.specs: dict[str, FunctionSpec] = {s.logical_id: s for s in function_specs(self.template)}
        self._stack: ProvisionedStack | None = None
        self._module_numbers = itertools.count(1)
        self._clients: dict[str, Any] = {}

    def start(self) -> LocalAws:
        # moto allows one PurgeQueue a minute, as AWS does; the benchmarks purge often (see purge_queue).
        os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
        self.moto.start()
        # Every boto3 client made in this process (the handlers' included) goes to moto, never to AWS.
        os.environ.update(self.moto.environment())
        self.sandbox.start()
        clients = {name: self.moto.client(name) for name in ("sqs", "dynamodb", "secretsmanager", "sns")}
        self._stack = provision(
            clients,
            self.template,
            self.stack_name,
            LOCAL_REGION,
            LocalSettings().secret_values(),
            {"FanfareApiUrl": self.sandbox.base_url},
        )
        return self

    def stop(self) -> None:
        self.sandbox.stop()
        self.moto.stop()

    @property
    def stack(self) -> ProvisionedStack:
        assert self._stack is not None, "start() first"
        return self._stack

    @property
    def queue_url(self) -> str:
        return self.stack.ref("CompletionQueue")

    @property
    def queue_arn(self) -> str:
        return self.stack.resources["CompletionQueue"].attributes["Arn"]

    def client(self, service: str) -> Any:
        """The benchmark's own client per service (not the handlers'), made once: each costs ~50 ms."""
        if service not in self._clients:
            self._clients[service] = self.moto.client(service)
        return self._clients[service]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's template environment, resolved against moto's resources (as `make run` sets it)."""
        spec = self.specs[logical_id]
        resolved = {name: str(value) for name, value in self.stack.resolve(spec.environment).items()}
        return {
            **self.moto.environment(),
            **resolved,
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        }

    def load(self, logical_id: str) -> ModuleType:
        """Import the function's app.py as a fresh module (its cold start) with its environment set."""
        spec = self.specs[logical_id]
        os.environ.update(self.function_environment(logical_id))
        name = f"bench_{logical_id}_{next(self._module_numbers)}"
        loader_spec = importlib.util.spec_from_file_location(name, spec.module_path)
        assert loader_spec is not None
        assert loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
        return module

    def context(self, logical_id: str) -> LocalLambdaContext:
        spec = self.specs[logical_id]
        return LocalLambdaContext(
            function_name=logical_id, memory_limit_in_mb=spec.memory_mb, timeout_seconds=spec.timeout_seconds
        )

    def purge_queue(self) -> None:
        """moto's SendMessage scans the whole queue (cost grows with depth; AWS's does not), so benchmarks
        that only send keep the queue empty between rounds."""
        self.client("sqs").purge_queue(QueueUrl=self.queue_url)


def expect_status(response: dict[str, Any], status: int, outcome: str) -> None:
    """Fail loudly if a measured invocation did not do the work it is supposed to measure."""
    body = json.loads(response.get("body") or "{}")
    if response.get("statusCode") != status or body.get("status") != outcome:
        raise RuntimeError(f"unexpected handler answer: {response.get('statusCode')} {body}")

"""Mutation fuzzer over both webhook handlers: `make fuzz` (100,000 inputs) and a bounded sample in tests.

Each input is an API Gateway v2 event built from a realistic signed webhook, then mutated: body bytes
(flips, inserts, deletions, truncation, duplicated chunks), swapped field types, deep nesting, huge numbers,
NaN, non-UTF-8 and UTF-16 bodies, base64 flags that lie, missing / duplicated / garbage headers. Half of the
mutated bodies are re-signed with the real secret, so the fuzzer reaches the parser and the extraction, not
only the signature check. The real handler module runs (routing, event parsing, its log line with the EMF
metrics, into a sink); only the two I/O adapters are swapped for in-memory ones, so 100,000 inputs take
well under a minute.

Invariants checked on every input: no exception escapes; the answer is 200 or 401 (never 500: nothing here
makes the queue unavailable); the body is JSON with a status; and a message is queued only when the request
carried a valid signature of the exact bytes received.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import io
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT / "cli")]

from fanfare_sync.logic.verify_signature import compute_signature  # noqa: E402
from fanfare_sync.models.queue_message import OrderMessage  # noqa: E402
from fanfare_sync_cli.local.gateway import build_http_api_event  # noqa: E402
from fanfare_sync_cli.local.lambda_context import LocalLambdaContext  # noqa: E402
from fanfare_sync_cli.samples import (  # noqa: E402
    SampleAdmission,
    SampleOrder,
    shopify_headers,
    shopify_order,
    shopify_refund,
    to_body,
    woocommerce_headers,
    woocommerce_order,
)

SECRET = "fuzz-secret"


@dataclass
class StaticSecrets:
    def current(self) -> tuple[str, ...]:
        return (SECRET,)

    def refreshed(self) -> tuple[str, ...] | None:
        return None


@dataclass
class RecordingQueue:
    sent: list[OrderMessage] = field(default_factory=list)

    def send(self, message: OrderMessage) -> None:
        self.sent.append(message)


_DUMMY_CONFIGURATION = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "fanfare-sync",
    "POWERTOOLS_METRICS_NAMESPACE": "FanfareSync",
    "COMPLETION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fuzz",
    "SHOPIFY_WEBHOOK_SECRET_ARN": "fuzz",
    "WC_WEBHOOK_SECRET_ARN": "fuzz",
}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the import only: the fuzzer runs inside the test session too."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_handler(function_dir: str) -> ModuleType:
    """The function's app.py, with dummy configuration (the adapters it builds are replaced right after)."""
    path = ROOT / "functions" / function_dir / "app.py"
    spec = importlib.util.spec_from_file_location(f"fuzz_{function_dir}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.endpoint._secrets = StaticSecrets()
    module.endpoint._queue = RecordingQueue()
    return module


def seeds() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(function, path, headers, body) of realistic deliveries to start from."""
    two = SampleOrder(
        per_line_item=True,
        admissions=(SampleAdmission("q1", "queue", "c1"), SampleAdmission("d1", "draw", "c1")),
    )
    out = []
    for topic, payload in [
        ("orders/paid", shopify_order(SampleOrder())),
        ("orders/paid", shopify_order(two)),
        ("orders/cancelled", shopify_order(SampleOrder(), cancelled=True)),
        ("refunds/create", shopify_refund(SampleOrder())),
    ]:
        body = to_body(payload)
        out.append(("shopify_webhook", "/webhooks/shopify", shopify_headers(topic, body, SECRET), body))
    for status in ("processing", "completed", "cancelled", "refunded", "pending"):
        body = to_body(woocommerce_order(two if status == "completed" else SampleOrder(), status=status))
        out.append(
            (
                "woocommerce_webhook",
                "/webhooks/woocommerce",
                woocommerce_headers("order.updated", body, SECRET),
                body,
            )
        )
    out.append(
        (
            "woocommerce_webhook",
            "/webhooks/woocommerce",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"webhook_id=9",
        )
    )
    return out


_NASTY_BODIES = [
    b"",
    b" ",
    b"null",
    b"[]",
    b'"text"',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"id": ' + b"9" * 5000 + b"}",
    b'{"id": 1e999999, "total_price": NaN}',
    b'{"id": 1, "total_price": Infinity, "note_attributes": {"name": "x"}}',
    b"\xff\xfe\xfd",
    '{"id": 1}'.encode("utf-16"),
    b'\xef\xbb\xbf{"id": 1}',
    b'{"id": 1, "line_items": ['
    + b'{"properties": [{"name": "_fanfare_distribution_id", "value": "q"}]},' * 300
    + b"{}]}",
]


def _swap_types(body: bytes, rng: random.Random) -> bytes:
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    if not isinstance(payload, dict) or not payload:
        return body
    key = rng.choice(list(payload))
    payload[key] = rng.choice([None, [], {}, "", 0, -1, 10**30, "x" * 1000, [[[]]], {"name": None}, True])
    return json.dumps(payload).encode()


def mutate_body(body: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(9)
    data = bytearray(body)
    if choice == 0 and data:
        for _ in range(rng.randint(1, 8)):
            index = rng.randrange(len(data))
            data[index] ^= 1 << rng.randrange(8)
    elif choice == 1:
        index = rng.randrange(len(data) + 1)
        data[index:index] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif choice == 2 and data:
        start = rng.randrange(len(data))
        del data[start : start + rng.randint(1, 64)]
    elif choice == 3:
        data = data[: rng.randrange(len(data) + 1)]
    elif choice == 4 and data:
        start = rng.randrange(len(data))
        chunk = data[start : start + rng.randint(1, 128)]
        data[start:start] = chunk * rng.randint(1, 4)
    elif choice == 5:
        return _swap_types(body, rng)
    elif choice == 6:
        return rng.choice(_NASTY_BODIES)
    elif choice == 7:
        return body.replace(b'"199.00"', rng.choice([b"199.00", b"1e400", b'"-1"', b"null", b'"abc"']))
    return bytes(data)


def mutate_headers(headers: dict[str, str], rng: random.Random) -> dict[str, str]:
    mutated = dict(headers)
    for _ in range(rng.randint(0, 3)):
        choice = rng.randrange(6)
        names = list(mutated)
        if choice == 0 and names:
            mutated.pop(rng.choice(names))
        elif choice == 1 and names:
            # The same header twice: API Gateway joins the values with a comma.
            name = rng.choice(names)
            mutated[name] = f"{mutated[name]},{mutated[name]}"
        elif choice == 2 and names:
            mutated[rng.choice(names)] = rng.choice(
                ["", " ", "\u00e9\u4e2d", "x" * 5000, "a\r\nb", "orders/paid"]
            )
        elif choice == 3:
            mutated["X-Shopify-Topic"] = rng.choice(
                ["orders/paid", "refunds/create", "shop/redact", "ORDERS/PAID", ""]
            )
        elif choice == 4:
            mutated["X-WC-Webhook-Topic"] = rng.choice(
                ["order.created", "order.updated", "order.deleted", "x"]
            )
        elif choice == 5 and names:
            name = rng.choice(names)
            mutated[name.upper() if rng.random() < 0.5 else name.lower()] = mutated.pop(name)
    return mutated


@dataclass
class FuzzReport:
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    seconds: float = 0.0


class InvariantBroken(AssertionError):
    pass


def run(count: int, seed: int = 1, progress: Callable[[int], None] | None = None) -> FuzzReport:
    # The configuration Lambda would give the functions, for the run only (it also runs inside pytest).
    with _environment(_DUMMY_CONFIGURATION):
        return _run(count, seed, progress)


def _run(count: int, seed: int, progress: Callable[[int], None] | None) -> FuzzReport:
    handlers = {name: load_handler(name) for name in ("shopify_webhook", "woocommerce_webhook")}
    corpus = seeds()
    rng = random.Random(seed)
    report = FuzzReport()
    context = LocalLambdaContext(function_name="fuzz")
    started = time.perf_counter()
    sink = io.StringIO()
    _fuzz(count, rng, corpus, handlers, context, sink, report, progress)
    report.seconds = time.perf_counter() - started
    return report


def _fuzz(
    count: int,
    rng: random.Random,
    corpus: list[tuple[str, str, dict[str, str], bytes]],
    handlers: dict[str, ModuleType],
    context: LocalLambdaContext,
    sink: io.StringIO,
    report: FuzzReport,
    progress: Callable[[int], None] | None,
) -> None:
    for number in range(count):
        function, path, headers, body = rng.choice(corpus)
        if rng.random() < 0.9:
            body = mutate_body(body, rng)
        headers = mutate_headers(headers, rng)
        signature_header = (
            "X-Shopify-Hmac-Sha256" if function == "shopify_webhook" else "X-WC-Webhook-Signature"
        )
        roll = rng.random()
        if roll < 0.5:
            headers[signature_header] = compute_signature(SECRET, body)  # re-signed: reaches the parser
        elif roll < 0.6:
            headers.pop(signature_header, None)
        event = build_http_api_event("POST", path, "", headers, body, "203.0.113.9")
        if rng.random() < 0.05:
            # A flag that lies, or a body API Gateway would never send: the handler must still cope.
            event["isBase64Encoded"] = not event["isBase64Encoded"]
        signed_bytes = _received_bytes(event)
        valid = any(
            name.lower() == signature_header.lower() and value == compute_signature(SECRET, signed_bytes)
            for name, value in event["headers"].items()
        )
        module = handlers[function]
        queue: RecordingQueue = module.endpoint._queue
        before = len(queue.sent)
        sink.seek(0)
        sink.truncate()
        with contextlib.redirect_stdout(sink):  # the log line with its metrics, one per input
            response = module.lambda_handler(event, context)
        status = response.get("statusCode")
        if status not in (200, 401):
            raise InvariantBroken(f"input {number}: status {status} for {event!r:.500}")
        answer = json.loads(response["body"])
        if not isinstance(answer, dict) or "status" not in answer:
            raise InvariantBroken(f"input {number}: body {response['body']!r:.200}")
        if len(queue.sent) > before and not valid:
            raise InvariantBroken(f"input {number}: queued without a valid signature: {event!r:.500}")
        report.queued += len(queue.sent) - before
        del queue.sent[:]
        report.outcomes[answer["status"]] += 1
        report.inputs += 1
        if progress and report.inputs % 10_000 == 0:
            progress(report.inputs)


def _received_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            return b""
    return str(body).encode("utf-8", "surrogateescape")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    print(f"fuzzing both webhook handlers: {args.count} inputs, seed {args.seed}", flush=True)
    report = run(args.count, args.seed, progress=lambda n: print(f"  {n} inputs ...", flush=True))
    rate = report.inputs / report.seconds if report.seconds else 0.0
    print(f"fuzzed {report.inputs} inputs in {report.seconds:.1f} s ({rate:.0f}/s), {report.queued} queued")
    for outcome, number in report.outcomes.most_common():
        print(f"  {outcome:<12} {number}")
    print(f"fuzz: {report.inputs} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

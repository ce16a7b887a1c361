"""Run a function's handler the way Lambda does: in its own process, one invocation at a time.

Each worker process is one warm "container": it sets the function's own environment from the template,
imports the handler module once (the cold start) and then serves invocations. Separate processes keep each
function's module-level state (Powertools Logger/Metrics singletons, clients, caches) apart, as on Lambda,
and let two functions run in parallel on two cores.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

from fanfare_sync_cli.local.lambda_context import LocalLambdaContext
from fanfare_sync_cli.local.template import PROJECT_ROOT, FunctionSpec

LAYER_PATH = PROJECT_ROOT / "layers" / "common"


class _MetricTap(io.TextIOBase):
    """stdout of a worker: passes everything through and also sends each EMF line to the runtime.

    Powertools Metrics prints EMF blobs to stdout, which CloudWatch Logs turns into metrics; locally the
    runtime receives them this way to evaluate the template's alarms.
    """

    def __init__(self, stream: TextIO, connection: Connection) -> None:
        self._stream = stream
        self._connection = connection
        self._partial = ""

    def write(self, text: str) -> int:
        self._stream.write(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if line.startswith('{"_aws"'):
                self._connection.send(("emf", line))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


class FunctionInitError(RuntimeError):
    """The handler module failed to import (what Lambda reports as Runtime.ImportModuleError / init error)."""


@dataclass(frozen=True)
class Invocation:
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_type is not None


def _serve(
    connection: Connection,
    module_path: str,
    handler_name: str,
    function_name: str,
    timeout: float,
    memory_mb: int,
    environment: dict[str, str],
) -> None:
    # Ctrl-C is the runtime's to handle: it stops the workers after the pollers and the gateway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = _MetricTap(sys.stdout, connection)
    os.environ.update(environment)
    # Lambda puts the function's code root and the layer's /opt/python on the path; so do we.
    sys.path[:0] = [str(Path(module_path).parent), str(LAYER_PATH)]
    try:
        spec = importlib.util.spec_from_file_location(Path(module_path).stem, module_path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {module_path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        handler = getattr(module, handler_name)
    except BaseException as error:  # the parent needs the reason, whatever it was
        connection.send(("init_error", f"{type(error).__name__}: {error}"))
        return
    connection.send(("ready", None))
    while True:
        try:
            message = connection.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        event, request_id = message
        context = LocalLambdaContext(
            function_name=function_name,
            memory_limit_in_mb=memory_mb,
            timeout_seconds=timeout,
            aws_request_id=request_id,
        )
        try:
            # A JSON round trip, as Lambda serialises the response; a non-JSON result is an error there too.
            result = json.loads(json.dumps(handler(event, context)))
            connection.send(("ok", result))
        except Exception as error:
            traceback.print_exc()
            connection.send(("error", (type(error).__name__, str(error))))


MetricSink = Callable[[str], None]


class FunctionWorker:
    def __init__(
        self, spec: FunctionSpec, environment: dict[str, str], on_metrics: MetricSink | None = None
    ) -> None:
        self.spec = spec
        self._environment = environment
        self._on_metrics = on_metrics
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None

    def start(self, timeout_seconds: float = 60.0) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(
                child,
                str(self.spec.module_path),
                self.spec.handler_name,
                self.spec.logical_id,
                float(self.spec.timeout_seconds),
                self.spec.memory_mb,
                self._environment,
            ),
            name=f"lambda-{self.spec.logical_id}",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._connection = parent
        try:
            status, detail = self._receive(timeout_seconds)
        except TimeoutError:
            self.stop()
            raise FunctionInitError(
                f"{self.spec.logical_id}: init did not finish in {timeout_seconds:.0f} s"
            ) from None
        except EOFError:
            status, detail = "init_error", "process exited during init"
        if status != "ready":
            self.stop()
            raise FunctionInitError(f"{self.spec.logical_id}: {detail}")

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def invoke(self, event: Any, request_id: str) -> Invocation:
        if self._connection is None or not self.alive:
            raise RuntimeError(f"{self.spec.logical_id} worker is not running")
        self._connection.send((event, request_id))
        try:
            status, detail = self._receive(self.spec.timeout_seconds)
        except TimeoutError:
            # Lambda kills a timed-out invocation's sandbox; the next invocation gets a cold one.
            self.stop()
            return Invocation(
                error_type="Sandbox.Timedout",
                error_message=f"Task timed out after {self.spec.timeout_seconds:.2f} seconds",
            )
        except EOFError:
            self.stop()
            return Invocation(error_type="Runtime.ExitError", error_message="the function's process exited")
        if status == "ok":
            return Invocation(payload=detail)
        return Invocation(error_type=detail[0], error_message=detail[1])

    def _receive(self, timeout_seconds: float) -> tuple[str, Any]:
        """The worker's next status message; EMF lines that arrive first go to the metric sink."""
        assert self._connection is not None
        deadline = time.monotonic() + timeout_seconds
        while True:
            if not self._connection.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            kind, detail = self._connection.recv()
            if kind != "emf":
                return kind, detail
            if self._on_metrics is not None:
                self._on_metrics(detail)

    def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, ValueError):
                self._connection.send(None)
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None


class FunctionPool:
    """Up to `max_workers` warm containers of one function; an invocation waits for an idle one."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        max_workers: int = 2,
        on_metrics: MetricSink | None = None,
        on_invocation: Callable[[Invocation], None] | None = None,
    ) -> None:
        self.spec = spec
        self._environment = environment
        self._on_metrics = on_metrics
        self._on_invocation = on_invocation
        self._max_workers = max_workers
        self._idle: queue.Queue[FunctionWorker] = queue.Queue()
        self._all: list[FunctionWorker] = []
        self._lock = threading.Lock()
        self._counter = 0

    def warm(self) -> None:
        """Start one worker now, so an import error shows at startup rather than on the first webhook."""
        self._idle.put(self._new_worker())

    def invoke(self, event: Any) -> Invocation:
        worker = self._acquire()
        with self._lock:
            self._counter += 1
            request_id = f"{self.spec.logical_id}-{os.getpid()}-{self._counter}"
        try:
            invocation = worker.invoke(event, request_id)
        finally:
            self._release(worker)
        if self._on_invocation is not None:
            self._on_invocation(invocation)
        return invocation

    def _acquire(self) -> FunctionWorker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            # Reserve the slot under the lock so concurrent callers never exceed max_workers.
            reserved = len(self._all) < self._max_workers
            if reserved:
                worker = FunctionWorker(self.spec, self._environment, self._on_metrics)
                self._all.append(worker)
        if reserved:
            return self._start_reserved(worker)
        return self._idle.get()

    def _release(self, worker: FunctionWorker) -> None:
        if worker.alive:
            self._idle.put(worker)
        else:
            with self._lock:
                self._all.remove(worker)

    def _new_worker(self) -> FunctionWorker:
        worker = FunctionWorker(self.spec, self._environment, self._on_metrics)
        with self._lock:
            self._all.append(worker)
        return self._start_reserved(worker)

    def _start_reserved(self, worker: FunctionWorker) -> FunctionWorker:
        try:
            worker.start()
        except FunctionInitError:
            with self._lock:
                self._all.remove(worker)
            raise
        return worker

    def stop(self) -> None:
        with self._lock:
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.stop()

"""`python -m fanfare_sync_cli.sandbox [--host H] [--port P] [--org-id ID] [--secret-key KEY]`: serve until
Ctrl-C (or SIGTERM, which is how a supervising `make run` stops it)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from fanfare_sync_cli.sandbox.server import (
    DEFAULT_HOLD_SECONDS,
    DEFAULT_ORG_ID,
    DEFAULT_SECRET_KEY,
    FanfareSandbox,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fanfare_sync_cli.sandbox",
        description="Local Fanfare admission-completion API with fault injection (control API: /_sandbox/).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=4010, help="port; 0 picks a free one (default: 4010)")
    parser.add_argument("--org-id", default=DEFAULT_ORG_ID)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument(
        "--repeat-completion",
        choices=["conflict", "ok"],
        default="conflict",
        help="answer to a repeated completion: 409 already_completed (conflict) or 200 COMPLETED (ok)",
    )
    parser.add_argument("--hold-seconds", type=float, default=DEFAULT_HOLD_SECONDS, help="timeout-fault hold")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sandbox = FanfareSandbox(
        args.host,
        args.port,
        args.org_id,
        args.secret_key,
        hold_seconds=args.hold_seconds,
        repeat_completion=args.repeat_completion,
    )
    base_url = sandbox.start()
    # One machine-readable line on stdout (the org id, never the key), so a supervisor using --port 0
    # can learn the URL.
    print(f"Fanfare sandbox listening on {base_url}", flush=True)
    try:
        # wait() with a timeout in a loop keeps the main thread responsive to signals on every platform.
        while not done.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`fanfare-sync local`: the whole bundle on this machine (what `make run` starts)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from fanfare_sync_cli.local.stack import LocalSettings, LocalStack


@click.command()
@click.option("--port", type=int, default=None, help="Webhook port [env PORT, default 3000].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--workers", type=int, default=2, show_default=True, help="Warm processes per function.")
@click.option(
    "--fanfare-url",
    default=None,
    help="Fanfare API to complete against [env FANFARE_API_URL; default: start the local sandbox].",
)
@click.option(
    "--schedule-every",
    type=click.FloatRange(min=0.5),
    default=None,
    help="Run scheduled functions (the stale-order monitor) every N seconds instead of the template rate; "
    "alarm periods shrink by the same factor.",
)
@click.option(
    "--stale-after",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds after which an unsynced order is stale [template: StaleAfterMinutes].",
)
@click.option(
    "--status-every",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    help="Seconds between status summary lines (0: none).",
)
def local(
    port: int | None,
    host: str,
    workers: int,
    fanfare_url: str | None,
    schedule_every: float | None,
    stale_after: float | None,
    status_every: float,
) -> None:
    """Run the whole bundle locally on moto server: no AWS account, no Docker. Ctrl-C stops it all."""
    settings = LocalSettings.from_environment(
        port=port,
        host=host,
        workers_per_function=workers,
        fanfare_api_url=fanfare_url,
        schedule_every_seconds=schedule_every,
        stale_after_seconds=stale_after,
        status_every_seconds=status_every,
    )
    stack = LocalStack(settings)
    stopping = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    click.echo("starting fanfare-sync locally ...")
    try:
        stack.start()
    except Exception as error:
        raise click.ClickException(f"local stack did not start: {error}") from error
    for line in stack.summary():
        click.echo(f"  {line}")
    click.echo("ready. Ctrl-C to stop.")
    try:
        stopping.wait()
    finally:
        click.echo("stopping ...")
        stack.stop()
        click.echo("stopped.")

"""`fanfare-sync dlq list|redrive`: what failed for good, and sending it back once the cause is fixed.

How listing avoids consuming and why moving is safe: see fanfare_sync_cli/dlq_redrive.py.
Exit status: 1 when the DLQ is empty or no message matches the filters, so a script can tell
"nothing to do" from "done"; 0 otherwise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from botocore.exceptions import BotoCoreError, ClientError

from fanfare_sync_cli.dlq_redrive import (
    FILTER_KEYS,
    DeadLetterQueue,
    DlqMessage,
    MessageFilter,
    peek,
    queue_arn,
    redrive,
    watch_move_task,
)
from fanfare_sync_cli.formatting import human_age, shorten, table, to_json
from fanfare_sync_cli.targets import TargetSelector, describe_aws_error, target_options

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar  # the type click.progressbar returns


@click.group()
def dlq() -> None:
    """Inspect and redrive the completion dead-letter queue."""


def _parse_filters(
    _ctx: click.Context, _param: click.Parameter, values: Sequence[str]
) -> tuple[MessageFilter, ...]:
    try:
        return tuple(MessageFilter.parse(value) for value in values)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


_filter_option = click.option(
    "--filter",
    "filters",
    multiple=True,
    callback=_parse_filters,
    metavar="KEY=VALUE",
    help=f"Only messages whose {'/'.join(FILTER_KEYS)} is VALUE (reason: contains it, any case). "
    "Repeat to narrow: every filter must match.",
)


def _describe_filters(filters: Sequence[MessageFilter]) -> str:
    return " ".join(str(f) for f in filters)


def _rows(messages: Sequence[DlqMessage], now: datetime) -> list[tuple[object, ...]]:
    return [
        (
            human_age(age) if (age := m.age_seconds(now)) is not None else "?",
            m.order_id or "?",
            m.kind or "?",
            m.platform or "?",
            m.shop or "?",
            m.attempts if m.attempts is not None else "-",
            shorten(m.reason, 80),
        )
        for m in messages
    ]


_HEADERS = ("AGE", "ORDER", "KIND", "PLATFORM", "SHOP", "ATTEMPTS", "REASON")


@dlq.command("list")
@_filter_option
@click.option("--json", "as_json", is_flag=True, help="Print the messages (bodies parsed) as JSON.")
@target_options
def list_messages(target: TargetSelector, filters: tuple[MessageFilter, ...], as_json: bool) -> None:
    """Messages in the DLQ with their order, last error and attempts, oldest first (nothing is consumed).

    AGE counts from when the order event was first queued. Exit status 1 when the DLQ is empty or nothing
    matches the filters.
    """
    resolved = target.resolve()
    everything = peek(DeadLetterQueue(resolved.client("sqs"), resolved.resource("CompletionDLQ")))
    now = datetime.now(UTC)
    if not everything:
        raise click.ClickException(f"the DLQ of {resolved.description} is empty")
    shown = [m for m in everything if all(f.matches(m) for f in filters)]
    if not shown:
        raise click.ClickException(
            f"no DLQ message matches {_describe_filters(filters)} ({len(everything)} in the DLQ)"
        )
    if as_json:
        click.echo(to_json([m.to_json(now) for m in shown]))
        return
    count = f"{len(shown)} of {len(everything)}" if filters else str(len(everything))
    click.echo(f"{count} message{'s' if len(everything) != 1 else ''} in the DLQ of {resolved.description}")
    for line in table(_HEADERS, _rows(shown, now)):
        click.echo(line)


@dlq.command("redrive")
@_filter_option
@click.option("--dry-run", is_flag=True, help="Show what would move; move nothing.")
@target_options
def redrive_messages(target: TargetSelector, filters: tuple[MessageFilter, ...], dry_run: bool) -> None:
    """Move DLQ messages back to the completion queue once the cause is fixed.

    Each message is sent to the completion queue first and deleted from the DLQ after: at least once,
    never lost; the consumer's idempotency keeps a copy from completing an admission twice. The message
    starts over with the full retry schedule. Against a deployed stack, with no filter, SQS's own
    StartMessageMoveTask is used when it is available.
    """
    resolved = target.resolve()
    destination = resolved.resource("CompletionQueue")
    queue = DeadLetterQueue(resolved.client("sqs"), resolved.resource("CompletionDLQ"), destination)
    depth = queue.approximate_depth()
    # An empty DLQ goes the manual way too, which scans and says so.
    if not resolved.local and not filters and not dry_run and depth and _move_task(queue, destination):
        return
    verb = "checking" if dry_run else "redriving"
    label = f"{verb} ~{depth} DLQ message{'s' if depth != 1 else ''}"
    with _progressbar(depth, label) as bar:
        report = redrive(queue, filters, dry_run=dry_run, progress=bar.update)
    if report.scanned == 0:
        raise click.ClickException(f"the DLQ of {resolved.description} is empty: nothing to redrive")
    if not report.matched:
        raise click.ClickException(
            f"no DLQ message matches {_describe_filters(filters)} ({report.scanned} scanned, left in place)"
        )
    now = datetime.now(UTC)
    result = report.result
    if dry_run:
        click.echo(f"would move {len(report.matched)} of {report.scanned} messages (dry run: nothing moved)")
        for line in table(_HEADERS, _rows(report.matched, now)):
            click.echo(line)
        return
    left = report.scanned - len(result.moved)
    click.echo(
        f"moved {len(result.moved)} message{'s' if len(result.moved) != 1 else ''} "
        f"to the completion queue; {left} left in the DLQ"
    )
    for line in table(_HEADERS, _rows(result.moved, now)):
        click.echo(line)
    for message, why in result.delete_failed:
        click.echo(
            f"warning: order {message.order_id or '?'} was sent back but not deleted from the DLQ ({why}); "
            "it will be listed again, and redriving it again is harmless",
            err=True,
        )
    if result.send_failed:
        first, why = result.send_failed[0]
        raise click.ClickException(
            f"{len(result.send_failed)} message(s) could not be sent back and stay in the DLQ "
            f"(first: order {first.order_id or '?'}: {why})"
        )


def _progressbar(length: int, label: str) -> ProgressBar[int]:
    # On stderr so stdout keeps the report; only on a terminal, where it can redraw itself: in a log or a
    # pipe it would be a stray label line next to the one-line errors.
    return click.progressbar(
        length=max(length, 1), label=label, file=sys.stderr, hidden=not sys.stderr.isatty()
    )


def _move_task(
    queue: DeadLetterQueue, destination_url: str, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Redrive everything with SQS's StartMessageMoveTask; False when it is unavailable (move by hand)."""
    sqs = queue.sqs
    try:
        source = queue_arn(sqs, queue.url)
        handle = sqs.start_message_move_task(
            SourceArn=source, DestinationArn=queue_arn(sqs, destination_url)
        )["TaskHandle"]
    except (ClientError, BotoCoreError) as error:
        reason = describe_aws_error(error, local=False) or type(error).__name__
        click.echo(
            f"StartMessageMoveTask unavailable ({shorten(reason, 120)}); moving messages one by one", err=True
        )
        return False
    click.echo(f"started SQS message move task {handle} (Ctrl-C stops watching; the task goes on)")
    with _progressbar(1, "moving") as bar:

        def show(moved: int, to_move: int) -> None:
            bar.length = max(to_move, 1)
            bar.update(moved - bar.pos)

        task = watch_move_task(sqs, source, on_progress=show, sleep=sleep)
    moved = task.get("ApproximateNumberOfMessagesMoved", 0)
    if task.get("Status") != "COMPLETED":
        raise click.ClickException(
            f"the move task ended {task.get('Status')} after moving {moved} messages: "
            f"{task.get('FailureReason', '')}"
        )
    click.echo(f"moved {moved} messages to the completion queue (StartMessageMoveTask)")
    return True

"""Read the completion DLQ without consuming it, and move its messages back to the completion queue.

Reading. SQS has no "peek": the only way to see a message is to receive it, which hides it for the
visibility timeout and adds one to its receive count. For the DLQ both are harmless, which is why listing
it this way is safe:
- nothing consumes the DLQ (no event source mapping reads it), so hiding a message for a few seconds
  delays no one, and the listing makes every message it saw visible again as soon as it is done;
- the DLQ has no redrive policy of its own, so a higher receive count can never move a message anywhere,
  and SQS's retention counts from when the message was first sent, not from its receives.
Messages are received in rounds, each hidden for the whole listing, and deduplicated by MessageId: a round
that brings nothing new (the queue is empty of visible messages, or only messages already seen came back
because the listing took longer than the hold) ends it.

Moving. Send to the completion queue first, then delete from the DLQ: a crash in between leaves the
message in both queues, never in neither. That duplicate is harmless: the consumer completes each
admission once (order sync state, per-admission state and the idempotency table), so at-least-once
delivery is the right trade. StartMessageMoveTask does the same server-side on AWS, but moto does not
implement it and it cannot filter, so this manual move is the general path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Long enough to hide what a listing saw while it pages through the rest.
LIST_HOLD_SECONDS = 30
# A received message's handle must stay valid between its send and its delete.
MOVE_HOLD_SECONDS = 120
# Long polling asks every SQS server, so an empty answer means no visible message is left.
RECEIVE_WAIT_SECONDS = 1
# Rounds that bring only already-seen messages before the scan is taken as complete.
QUIET_ROUNDS = 2
BATCH = 10

FILTER_KEYS = ("order", "shop", "platform", "kind", "reason")
# A message without failureReason was moved by the completion queue's redrive policy (maxReceiveCount).
REDRIVE_POLICY_REASON = "redrive policy: the consumer crashed or timed out on every receive"


@dataclass(frozen=True)
class DlqMessage:
    message_id: str
    receipt_handle: str
    body: str
    sent_at: datetime | None
    receive_count: int
    failure_reason: str | None
    attempts: int | None
    order: dict[str, Any] | None

    @classmethod
    def from_sqs(cls, raw: dict[str, Any]) -> DlqMessage:
        attributes = raw.get("Attributes", {})
        custom = raw.get("MessageAttributes", {})
        sent = attributes.get("SentTimestamp")
        attempts = custom.get("attempts", {}).get("StringValue")
        try:
            parsed = json.loads(raw.get("Body", ""))
        except ValueError:
            parsed = None
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
            receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
            failure_reason=custom.get("failureReason", {}).get("StringValue"),
            attempts=int(attempts) if attempts and attempts.isdigit() else None,
            order=parsed if isinstance(parsed, dict) else None,
        )

    def _field(self, name: str) -> str:
        return str(self.order.get(name) or "") if self.order else ""

    @property
    def order_id(self) -> str:
        return self._field("orderId")

    @property
    def shop(self) -> str:
        return self._field("shop")

    @property
    def platform(self) -> str:
        return self._field("platform")

    @property
    def kind(self) -> str:
        return self._field("kind")

    @property
    def reason(self) -> str:
        # The consumer parks what it gave up on with a reason; the redrive policy moves crashes without one.
        return self.failure_reason or REDRIVE_POLICY_REASON

    def age_seconds(self, now: datetime) -> float | None:
        return (now - self.sent_at).total_seconds() if self.sent_at else None

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "orderId": self.order_id or None,
            "platform": self.platform or None,
            "shop": self.shop or None,
            "kind": self.kind or None,
            "failureReason": self.failure_reason,
            "attempts": self.attempts,
            "sentAt": _iso(self.sent_at) if self.sent_at else None,
            "ageSeconds": round(age, 1) if (age := self.age_seconds(now)) is not None else None,
            "body": self.order if self.order is not None else self.body,
        }


def _iso(moment: datetime) -> str:
    # The orders table's timestamp format, so the two can be compared by eye.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class MessageFilter:
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> MessageFilter:
        key, separator, value = text.partition("=")
        key = key.strip().lower()
        if not separator or key not in FILTER_KEYS or not value:
            raise ValueError(f"{text!r} is not KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}")
        return cls(key, value)

    def matches(self, message: DlqMessage) -> bool:
        if self.key == "reason":
            return self.value.lower() in message.reason.lower()
        actual = {
            "order": message.order_id,
            "shop": message.shop,
            "platform": message.platform,
            "kind": message.kind,
        }[self.key]
        return actual.lower() == self.value.lower()

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


def matches_all(message: DlqMessage, filters: Sequence[MessageFilter]) -> bool:
    return all(f.matches(message) for f in filters)


@dataclass
class MoveResult:
    moved: list[DlqMessage] = field(default_factory=list)
    # Not sent: still in the DLQ only (made visible again at the end).
    send_failed: list[tuple[DlqMessage, str]] = field(default_factory=list)
    # Sent but not deleted: in both queues; harmless (idempotent consumer), listed again next time.
    delete_failed: list[tuple[DlqMessage, str]] = field(default_factory=list)


@dataclass
class RedriveReport:
    scanned: int = 0
    matched: list[DlqMessage] = field(default_factory=list)
    result: MoveResult = field(default_factory=MoveResult)


class DeadLetterQueue:
    def __init__(self, sqs: Any, dlq_url: str, queue_url: str | None = None) -> None:
        self.sqs = sqs
        self.url = dlq_url
        self.queue_url = queue_url
        # The newest receipt handle of every message seen: only it can change visibility or delete.
        self._handles: dict[str, str] = {}

    def approximate_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def browse(self, hold_seconds: int) -> Iterator[list[DlqMessage]]:
        """Every message once, in batches, each hidden for `hold_seconds` (see the module docstring)."""
        seen: set[str] = set()
        quiet = 0
        while quiet < QUIET_ROUNDS:
            response = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=BATCH,
                VisibilityTimeout=hold_seconds,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            raw_messages = response.get("Messages", [])
            if not raw_messages:
                return
            fresh: list[DlqMessage] = []
            for raw in raw_messages:
                self._handles[raw["MessageId"]] = raw["ReceiptHandle"]
                if raw["MessageId"] not in seen:
                    seen.add(raw["MessageId"])
                    fresh.append(DlqMessage.from_sqs(raw))
            quiet = 0 if fresh else quiet + 1
            if fresh:
                yield fresh

    def release(self, messages: Sequence[DlqMessage]) -> None:
        """Make messages this scan hid visible again at once (best effort: a hold also simply expires)."""
        pending = [m for m in messages if m.message_id in self._handles]
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": self._handles[m.message_id], "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )

    def move(self, messages: Sequence[DlqMessage]) -> MoveResult:
        """Send each message to the completion queue, then delete it from the DLQ (never the reverse)."""
        if self.queue_url is None:
            raise ValueError("no completion queue to move messages to")
        result = MoveResult()
        for start in range(0, len(messages), BATCH):
            chunk = list(messages[start : start + BATCH])
            sent = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                # Only the body goes back: the failure attributes belong to the failed attempt, and the
                # message starts over with a receive count of 1, i.e. the full retry schedule.
                Entries=[{"Id": str(i), "MessageBody": m.body} for i, m in enumerate(chunk)],
            )
            sent_messages = [chunk[int(entry["Id"])] for entry in sent.get("Successful", [])]
            result.send_failed += [
                (chunk[int(entry["Id"])], str(entry.get("Message") or entry.get("Code")))
                for entry in sent.get("Failed", [])
            ]
            if not sent_messages:
                continue
            deleted = self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": self._handles.get(m.message_id, m.receipt_handle)}
                    for i, m in enumerate(sent_messages)
                ],
            )
            failed_ids = {int(entry["Id"]): entry for entry in deleted.get("Failed", [])}
            for index, message in enumerate(sent_messages):
                if index in failed_ids:
                    entry = failed_ids[index]
                    result.delete_failed.append((message, str(entry.get("Message") or entry.get("Code"))))
                else:
                    result.moved.append(message)
                    self._handles.pop(message.message_id, None)
        return result


def peek(dlq: DeadLetterQueue, filters: Sequence[MessageFilter] = ()) -> list[DlqMessage]:
    """Every message (matching the filters), left in the DLQ and visible again when this returns."""
    seen: list[DlqMessage] = []
    try:
        for batch in dlq.browse(LIST_HOLD_SECONDS):
            seen += batch
    finally:
        dlq.release(seen)
    ordered = sorted(seen, key=lambda m: m.sent_at or datetime.min.replace(tzinfo=UTC))
    return [m for m in ordered if matches_all(m, filters)]


def redrive(
    dlq: DeadLetterQueue,
    filters: Sequence[MessageFilter],
    *,
    dry_run: bool,
    progress: Callable[[int], None] = lambda _: None,
) -> RedriveReport:
    """Move the matching messages back, batch by batch as they are received; the rest stay untouched.

    `progress(n)` is called with the number of messages handled after each batch.
    """
    report = RedriveReport()
    kept: list[DlqMessage] = []
    try:
        for batch in dlq.browse(MOVE_HOLD_SECONDS):
            report.scanned += len(batch)
            matching = [m for m in batch if matches_all(m, filters)]
            kept += [m for m in batch if not matches_all(m, filters)]
            report.matched += matching
            if dry_run:
                kept += matching
            elif matching:
                moved = dlq.move(matching)
                report.result.moved += moved.moved
                report.result.send_failed += moved.send_failed
                report.result.delete_failed += moved.delete_failed
                kept += [m for m, _ in moved.send_failed]
            progress(len(batch))
    finally:
        # What was not moved is made visible again now rather than after the hold.
        dlq.release(kept)
    return report


# ------------------------------------------------------------------ StartMessageMoveTask (AWS only)
MOVE_TASK_DONE = ("COMPLETED", "FAILED", "CANCELLED")


def queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def watch_move_task(
    sqs: Any,
    source_arn: str,
    *,
    on_progress: Callable[[int, int], None],
    sleep: Callable[[float], None],
    interval: float = 2.0,
) -> dict[str, Any]:
    """Poll the DLQ's newest move task until it ends; `on_progress(moved, to_move)` after each poll.

    The newest task is the one just started: SQS runs one move task per source queue at a time, and lists
    only a running task with its handle, so the handle cannot be used to find a finished one.
    """
    while True:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        if not results:
            return {"Status": "UNKNOWN", "FailureReason": "the move task is not listed"}
        task: dict[str, Any] = results[0]
        on_progress(
            int(task.get("ApproximateNumberOfMessagesMoved", 0)),
            int(task.get("ApproximateNumberOfMessagesToMove", 0)),
        )
        if task.get("Status") in MOVE_TASK_DONE:
            return task
        sleep(interval)

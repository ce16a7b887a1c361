"""The DLQ redrive's safety rules and the move-task path, on an in-memory SQS (moto lacks move tasks, and
cannot be told to fail one SendMessageBatch entry)."""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
from botocore.exceptions import ClientError

from fanfare_sync_cli.commands.dlq import _move_task
from fanfare_sync_cli.dlq_redrive import (
    REDRIVE_POLICY_REASON,
    DeadLetterQueue,
    DlqMessage,
    MessageFilter,
    peek,
    redrive,
    watch_move_task,
)


class FakeSqs:
    """Just enough SQS: one DLQ, one destination, visibility as a flag, and injectable batch failures."""

    def __init__(
        self,
        bodies: list[str],
        *,
        fail_send: frozenset[str] = frozenset(),
        fail_delete: frozenset[str] = frozenset(),
    ) -> None:
        self.messages = {f"m{i}": body for i, body in enumerate(bodies)}
        self.hidden: set[str] = set()
        self.sent: list[str] = []
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_send = fail_send
        self.fail_delete = fail_delete
        self.receives = 0

    def receive_message(self, **request: Any) -> dict[str, Any]:
        self.receives += 1
        visible = [mid for mid in self.messages if mid not in self.hidden][: request["MaxNumberOfMessages"]]
        self.hidden |= set(visible)
        return {
            "Messages": [
                {
                    "MessageId": mid,
                    "ReceiptHandle": f"rh-{mid}-{self.receives}",
                    "Body": self.messages[mid],
                    "Attributes": {"SentTimestamp": "1795770000000", "ApproximateReceiveCount": "1"},
                }
                for mid in visible
            ]
        }

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        ok, failed = [], []
        for entry in Entries:
            body = entry["MessageBody"]
            if body in self.fail_send:
                failed.append({"Id": entry["Id"], "Code": "InternalError", "Message": "try again"})
            else:
                self.sent.append(body)
                ok.append({"Id": entry["Id"]})
        self.calls.append(("send", [e["MessageBody"] for e in Entries]))
        return {"Successful": ok, "Failed": failed}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        failed = []
        for entry in Entries:
            mid = entry["ReceiptHandle"].split("-")[1]
            if self.messages[mid] in self.fail_delete:
                failed.append({"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid"})
            else:
                assert self.messages[mid] in self.sent, "deleted before it was sent"
                del self.messages[mid]
                self.hidden.discard(mid)
        self.calls.append(("delete", [e["ReceiptHandle"] for e in Entries]))
        return {"Successful": [], "Failed": failed}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        for entry in Entries:
            assert entry["VisibilityTimeout"] == 0
            self.hidden.discard(entry["ReceiptHandle"].split("-")[1])
        self.calls.append(("release", [e["ReceiptHandle"] for e in Entries]))
        return {"Successful": [], "Failed": []}


def order_body(order_id: str, shop: str = "a.myshopify.com") -> str:
    return json.dumps({"orderId": order_id, "shop": shop, "platform": "shopify", "kind": "order.paid"})


def test_peek_sees_every_message_once_and_leaves_them_all_visible() -> None:
    sqs = FakeSqs([order_body(str(i)) for i in range(23)])
    listed = peek(DeadLetterQueue(sqs, "dlq"))
    assert sorted(m.order_id for m in listed) == sorted(str(i) for i in range(23))
    assert sqs.hidden == set()
    assert len(sqs.messages) == 23


def test_redrive_moves_only_matching_messages_and_sends_before_deleting() -> None:
    bodies = [order_body("1"), order_body("2", shop="b.myshopify.com"), order_body("3")]
    sqs = FakeSqs(bodies)
    progress: list[int] = []
    report = redrive(
        DeadLetterQueue(sqs, "dlq", "queue"),
        [MessageFilter.parse("shop=A.myshopify.com")],
        dry_run=False,
        progress=progress.append,
    )
    assert sorted(m.order_id for m in report.result.moved) == ["1", "3"]
    assert sorted(sqs.sent) == sorted([bodies[0], bodies[2]])
    assert list(sqs.messages.values()) == [bodies[1]]
    assert sqs.hidden == set(), "the message left behind is visible again"
    assert [kind for kind, _ in sqs.calls][:2] == ["send", "delete"]
    assert sum(progress) == 3


def test_a_message_that_could_not_be_sent_is_never_deleted() -> None:
    bodies = [order_body("1"), order_body("2")]
    sqs = FakeSqs(bodies, fail_send=frozenset({bodies[1]}))
    report = redrive(DeadLetterQueue(sqs, "dlq", "queue"), [], dry_run=False)
    assert [m.order_id for m in report.result.moved] == ["1"]
    assert [(m.order_id, why) for m, why in report.result.send_failed] == [("2", "try again")]
    assert list(sqs.messages.values()) == [bodies[1]]
    assert sqs.hidden == set()


def test_a_failed_delete_is_reported_and_the_message_stays_sent() -> None:
    bodies = [order_body("1")]
    sqs = FakeSqs(bodies, fail_delete=frozenset({bodies[0]}))
    report = redrive(DeadLetterQueue(sqs, "dlq", "queue"), [], dry_run=False)
    assert report.result.moved == []
    assert [m.order_id for m, _ in report.result.delete_failed] == ["1"]
    assert sqs.sent == bodies


def test_dry_run_moves_nothing() -> None:
    sqs = FakeSqs([order_body("1"), order_body("2")])
    report = redrive(DeadLetterQueue(sqs, "dlq", "queue"), [], dry_run=True)
    assert len(report.matched) == 2
    assert sqs.sent == []
    assert len(sqs.messages) == 2
    assert sqs.hidden == set()


def test_messages_from_the_redrive_policy_have_no_reason_and_can_be_filtered_by_it() -> None:
    parked = DlqMessage.from_sqs(
        {
            "MessageId": "a",
            "ReceiptHandle": "h",
            "Body": order_body("9"),
            "MessageAttributes": {
                "failureReason": {"DataType": "String", "StringValue": "HTTP 404: not_found"},
                "attempts": {"DataType": "Number", "StringValue": "3"},
            },
        }
    )
    crashed = DlqMessage.from_sqs({"MessageId": "b", "ReceiptHandle": "h", "Body": "not json"})
    assert (parked.reason, parked.attempts, parked.order_id) == ("HTTP 404: not_found", 3, "9")
    assert (crashed.reason, crashed.attempts, crashed.order_id) == (REDRIVE_POLICY_REASON, None, "")
    assert MessageFilter.parse("reason=http 404").matches(parked)
    assert not MessageFilter.parse("reason=http 404").matches(crashed)
    assert MessageFilter.parse("reason=Redrive Policy").matches(crashed)
    assert MessageFilter.parse("order=9").matches(parked)
    assert not MessageFilter.parse("order=99").matches(parked)


@pytest.mark.parametrize("text", ["order", "order=", "colour=red", "=1"])
def test_malformed_filters_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        MessageFilter.parse(text)


class MoveTaskSqs:
    def __init__(self, statuses: list[dict[str, Any]], *, unavailable: bool = False) -> None:
        self.statuses = statuses
        self.unavailable = unavailable
        self.started: list[tuple[str, str]] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:eu-west-1:1:{QueueUrl}"}}

    def start_message_move_task(self, SourceArn: str, DestinationArn: str) -> dict[str, Any]:
        if self.unavailable:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "StartMessageMoveTask")
        self.started.append((SourceArn, DestinationArn))
        return {"TaskHandle": "task-1"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        return {"Results": [self.statuses.pop(0)]}


def test_move_task_is_watched_until_it_completes(capsys: pytest.CaptureFixture[str]) -> None:
    sqs = MoveTaskSqs(
        [
            {
                "Status": "RUNNING",
                "ApproximateNumberOfMessagesMoved": 2,
                "ApproximateNumberOfMessagesToMove": 5,
            },
            {
                "Status": "COMPLETED",
                "ApproximateNumberOfMessagesMoved": 5,
                "ApproximateNumberOfMessagesToMove": 5,
            },
        ]
    )
    assert _move_task(DeadLetterQueue(sqs, "dlq", "queue"), "queue", sleep=lambda _: None)
    assert sqs.started == [("arn:aws:sqs:eu-west-1:1:dlq", "arn:aws:sqs:eu-west-1:1:queue")]
    assert "moved 5 messages to the completion queue (StartMessageMoveTask)" in capsys.readouterr().out


def test_a_failed_move_task_is_an_error() -> None:
    sqs = MoveTaskSqs([{"Status": "FAILED", "ApproximateNumberOfMessagesMoved": 1, "FailureReason": "KMS"}])
    with pytest.raises(click.ClickException, match="ended FAILED after moving 1 messages: KMS"):
        _move_task(DeadLetterQueue(sqs, "dlq", "queue"), "queue", sleep=lambda _: None)


def test_an_unavailable_move_task_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    sqs = MoveTaskSqs([], unavailable=True)
    assert not _move_task(DeadLetterQueue(sqs, "dlq", "queue"), "queue", sleep=lambda _: None)
    assert "StartMessageMoveTask unavailable" in capsys.readouterr().err


def test_watch_reports_progress() -> None:
    sqs = MoveTaskSqs(
        [
            {
                "Status": "RUNNING",
                "ApproximateNumberOfMessagesMoved": 0,
                "ApproximateNumberOfMessagesToMove": 3,
            },
            {
                "Status": "COMPLETED",
                "ApproximateNumberOfMessagesMoved": 3,
                "ApproximateNumberOfMessagesToMove": 3,
            },
        ]
    )
    seen: list[tuple[int, int]] = []
    sleeps: list[float] = []
    task = watch_move_task(
        sqs, "arn", on_progress=lambda moved, total: seen.append((moved, total)), sleep=sleeps.append
    )
    assert task["Status"] == "COMPLETED"
    assert seen == [(0, 3), (3, 3)]
    assert sleeps == [2.0]

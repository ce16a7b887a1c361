"""How `fanfare-sync orders show` words an order and its history."""

from __future__ import annotations

from decimal import Decimal

from fanfare_sync.models.orders import OrderKey
from fanfare_sync_cli.commands.orders import describe_completion, describe_event, render_order


def test_events_read_as_sentences_and_missing_fields_are_left_out() -> None:
    completed = {
        "event": "fanfare_admission_completed",
        "data": {
            "distributionType": "draw",
            "distributionId": "draw_1",
            "consumerId": "cons_1",
            "statusCode": Decimal(409),
            "latencyMs": Decimal("12.5"),
            "attempt": Decimal(2),
            "alreadyCompleted": True,
            "orderSynced": True,
        },
    }
    assert describe_event(completed) == (
        "draw draw_1 / cons_1: HTTP 409 in 12.5 ms (attempt 2), already completed, order synced"
    )
    sparse = {"event": "order_received", "data": {"kind": "order.paid", "topic": "fanfare-sync/requeue"}}
    assert describe_event(sparse) == "order.paid via fanfare-sync/requeue, 0 admissions"
    unknown = {"event": "something_new", "data": {"b": 2, "a": 1}}
    assert describe_event(unknown) == "a=1, b=2"


def test_an_order_without_its_item_still_shows_its_history() -> None:
    key = OrderKey("shopify", "x.myshopify.com", "7")
    event = {"event": "order_refunded", "at": "2026-11-27T10:00:00.000Z", "data": {"topic": "refunds/create"}}
    lines = render_order(key, None, [event])
    assert lines == [
        "order 7  shopify  x.myshopify.com",
        "  (no order item: only history events were recorded)",
        "history (1 event)",
        "  2026-11-27T10:00:00.000Z  order_refunded  via refunds/create",
    ]


def test_a_completed_admission_shows_fanfares_answer() -> None:
    answer = {
        "statusCode": Decimal(409),
        "latencyMs": Decimal("12.5"),
        "attempt": Decimal(2),
        "alreadyCompleted": True,
    }
    assert describe_completion(answer) == "HTTP 409 in 12.5 ms (attempt 2), already completed"
    assert describe_completion({**answer, "statusCode": Decimal(200), "alreadyCompleted": False}) == (
        "HTTP 200 in 12.5 ms (attempt 2)"
    )
    assert describe_completion(None) == ""  # a pending admission

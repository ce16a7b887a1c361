from __future__ import annotations

import pytest

from fanfare_sync.logic.retry_schedule import MAX_ATTEMPTS, MAX_DELAY_SECONDS, retry_delay_seconds


def test_schedule_is_one_five_thirty_seconds_two_and_ten_minutes_then_the_dlq() -> None:
    assert [retry_delay_seconds(attempt) for attempt in range(1, 8)] == [1, 5, 30, 120, 600, None, None]
    assert MAX_ATTEMPTS == 6


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [(1, 45, 45), (1, 0.2, 1), (3, 10, 30), (2, 5.01, 6), (1, 10**9, MAX_DELAY_SECONDS), (6, 30, None)],
)
def test_retry_after_only_ever_lengthens_the_wait(
    attempt: int, retry_after: float, expected: int | None
) -> None:
    assert retry_delay_seconds(attempt, retry_after) == expected

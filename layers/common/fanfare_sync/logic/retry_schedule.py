"""When to try a failed completion again: 1 s, 5 s, 30 s, 2 min, 10 min, then the DLQ.

The guide's sketch computes `Date.now() + RETRY_DELAYS[n] || 600000`, which adds before it falls back and so
never falls back; here the schedule is a plain table indexed by the attempt that just failed.
"""

from __future__ import annotations

import math

RETRY_DELAYS_SECONDS = (1, 5, 30, 120, 600)
# Six attempts in all: the first plus one per delay. Also the queue's redrive maxReceiveCount.
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
# SQS cannot hide a message longer than 12 hours.
MAX_DELAY_SECONDS = 43_200


def retry_delay_seconds(failed_attempt: int, retry_after_seconds: float | None = None) -> int | None:
    """Seconds until the next attempt, or None when `failed_attempt` was the last one.

    A `Retry-After` longer than the schedule wins: calling again sooner would only be refused again.
    """
    if failed_attempt >= MAX_ATTEMPTS:
        return None
    delay = RETRY_DELAYS_SECONDS[max(failed_attempt, 1) - 1]
    if retry_after_seconds is not None and retry_after_seconds > delay:
        delay = math.ceil(retry_after_seconds)
    return min(delay, MAX_DELAY_SECONDS)

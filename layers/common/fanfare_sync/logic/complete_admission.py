"""Complete one admission at Fanfare at most once, whoever asks and however often.

Powertools idempotency wraps the single call that must not repeat, keyed on (distributionId, consumerId):
duplicate deliveries, SQS redeliveries and concurrent copies of the same order all reach Fanfare once.
Only a successful completion is stored; a failure removes the in-progress record so the retry calls again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from fanfare_sync.models.fanfare import CompletionOutcome, CompletionRequest, CompletionResult

IDEMPOTENCY_KEY_PREFIX = "fanfare-completion"
# Longer than Shopify's 4 hours of retries and our 13 minutes of backoff; after it the order's own sync
# state is the second guard against completing twice.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class FanfareCompletions(Protocol):
    def complete_admission(self, request: CompletionRequest) -> CompletionResult: ...


class _NotCompletedError(Exception):
    """Raised inside the idempotent call so that nothing is stored for a failed completion."""

    def __init__(self, result: CompletionResult) -> None:
        super().__init__(result.reason)
        self.result = result


def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="[distributionId, consumerId]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    )


class AdmissionCompleter:
    def __init__(
        self,
        fanfare: Callable[[], FanfareCompletions],
        persistence_store: BasePersistenceLayer,
        config: IdempotencyConfig,
    ) -> None:
        self._fanfare = fanfare
        self.config = config
        # The last successful result per thread, so a completion Fanfare accepted is never forgotten even
        # when Powertools cannot write its record afterwards (records of a batch run on several threads).
        self._accepted = threading.local()
        self._complete_once = idempotent_function(
            data_keyword_argument="admission",
            persistence_store=persistence_store,
            config=config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._call_fanfare)

    def complete(self, request: CompletionRequest) -> CompletionResult:
        self._accepted.result = None
        try:
            stored: dict[str, Any] = self._complete_once(admission=_as_record(request))
        except _NotCompletedError as failure:
            return failure.result
        except IdempotencyPersistenceLayerError:
            accepted: CompletionResult | None = self._accepted.result
            if accepted is None:
                raise
            # Fanfare completed it, but the record saying so could not be written (DynamoDB throttled):
            # report the completion anyway, so the order is marked synced and never sent again.
            return accepted
        except IdempotencyAlreadyInProgressError:
            return CompletionResult(
                outcome=CompletionOutcome.RETRYABLE,
                status_code=None,
                reason="another delivery of this admission is being completed right now",
                elapsed_ms=0.0,
            )
        return CompletionResult.from_dict(stored)

    def _call_fanfare(self, admission: dict[str, Any]) -> dict[str, Any]:
        result = self._fanfare().complete_admission(CompletionRequest.from_dict(admission["request"]))
        if not result.outcome.is_success:
            raise _NotCompletedError(result)
        self._accepted.result = result
        return result.to_dict()


def _as_record(request: CompletionRequest) -> dict[str, Any]:
    # The key fields sit at the top for the JMESPath; the full request rides along for the call itself.
    return {
        "distributionId": request.distribution_id,
        "consumerId": request.consumer_id,
        "request": request.to_dict(),
    }

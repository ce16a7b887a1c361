"""Secrets Manager adapter: the Fanfare org id and secret key, cached per container."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
from pydantic_core import ValidationError

from fanfare_sync.adapters.fanfare_api import FanfareCredentials
from fanfare_sync.errors import SecretsUnavailableError

CREDENTIALS_MAX_AGE_SECONDS = 300
# After Fanfare answers 401/403 the key may have been rotated; re-read it, but not on every record.
MIN_SECONDS_BETWEEN_REFRESHES = 30


class SecretsManagerFanfareCredentials:
    """Reads `{"orgId": "...", "secretKey": "..."}` from the stack's Fanfare credentials secret.

    `provider` is a Powertools secrets provider (it keeps the cache); pass one built on the function's own
    boto3 session, so its client shares that session's loaders instead of starting a session of its own.
    """

    def __init__(
        self,
        secret_id: str,
        provider: SecretsProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._provider = provider or SecretsProvider()
        self._clock = clock
        self._lock = threading.Lock()
        self._force_next = False
        self._last_forced = float("-inf")

    def get(self) -> FanfareCredentials:
        with self._lock:
            force, self._force_next = self._force_next, False
        try:
            value: Any = self._provider.get(
                self._secret_id, transform="json", max_age=CREDENTIALS_MAX_AGE_SECONDS, force_fetch=force
            )
        except Exception as error:
            raise SecretsUnavailableError(
                f"Fanfare credentials unavailable ({type(error).__name__})"
            ) from error
        if not isinstance(value, dict):
            raise SecretsUnavailableError(
                'Fanfare credentials secret must be JSON {"orgId": ..., "secretKey": ...}'
            )
        try:
            return FanfareCredentials(org_id=value.get("orgId", ""), secret_key=value.get("secretKey", ""))
        except ValidationError as error:
            # pydantic's message would quote the input; only the field names go out.
            fields = ", ".join(str(e["loc"][0]) for e in error.errors())
            raise SecretsUnavailableError(f"Fanfare credentials secret is invalid ({fields})") from None

    def refresh_soon(self) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last_forced >= MIN_SECONDS_BETWEEN_REFRESHES:
                self._force_next = True
                self._last_forced = now

    def __repr__(self) -> str:
        return f"SecretsManagerFanfareCredentials({self._secret_id!r})"

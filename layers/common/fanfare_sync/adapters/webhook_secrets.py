"""Secrets Manager adapter: the webhook secrets a signature may be made with, cached per container."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from aws_lambda_powertools.utilities import parameters

from fanfare_sync.errors import SecretsUnavailableError
from fanfare_sync.logic.verify_signature import parse_accepted_secrets

# How long a container trusts its cached copy; a mismatch may re-read sooner (see `refreshed`).
SECRET_MAX_AGE_SECONDS = 300
# Forged requests also mismatch; this bounds what a flood of them costs in Secrets Manager calls.
MIN_SECONDS_BETWEEN_REFRESHES = 30


class SecretsManagerWebhookSecrets:
    def __init__(
        self,
        secret_id: str,
        decode: Callable[[str], str] = lambda secret: secret,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._decode = decode
        self._clock = clock
        self._last_refresh = clock()
        self._lock = threading.Lock()

    def current(self) -> tuple[str, ...]:
        return self._read(force=False)

    def refreshed(self) -> tuple[str, ...] | None:
        with self._lock:
            now = self._clock()
            if now - self._last_refresh < MIN_SECONDS_BETWEEN_REFRESHES:
                return None
            self._last_refresh = now
        return self._read(force=True)

    def _read(self, force: bool) -> tuple[str, ...]:
        try:
            value = parameters.get_secret(self._secret_id, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=force)
        except Exception as error:
            # Powertools wraps every provider failure; none of its text may carry the value, but the
            # type alone is what an operator needs.
            raise SecretsUnavailableError(type(error).__name__) from error
        if not isinstance(value, str):
            raise SecretsUnavailableError("secret is not a string")
        return tuple(self._decode(secret) for secret in parse_accepted_secrets(value))

    def __repr__(self) -> str:
        return f"SecretsManagerWebhookSecrets({self._secret_id!r})"

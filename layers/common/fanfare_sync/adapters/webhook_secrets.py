"""Secrets Manager adapter: the webhook secrets a signature may be made with, cached per container.

A small cache of its own over boto3 rather than Powertools' parameters utility: the webhook functions use
nothing else of Powertools, and importing it (with its own boto3 session) cost them ~20 ms of every cold
start. The behaviour is the same: one read per SECRET_MAX_AGE_SECONDS, a forced re-read on a signature
mismatch (rate-limited), and the value never leaves this module except as the accepted secrets.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fanfare_sync.errors import SecretsUnavailableError
from fanfare_sync.logic.verify_signature import parse_accepted_secrets

# How long a container trusts its cached copy; a mismatch may re-read sooner (see `refreshed`).
SECRET_MAX_AGE_SECONDS = 300
# Forged requests also mismatch; this bounds what a flood of them costs in Secrets Manager calls.
MIN_SECONDS_BETWEEN_REFRESHES = 30

# Shopify gives a webhook 5 s in all: a stuck read must fail in time for the function to answer 503 itself.
SECRETS_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 2},
)


class SecretsManagerWebhookSecrets:
    def __init__(
        self,
        secret_id: str,
        secretsmanager_client: Any,
        decode: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._client = secretsmanager_client
        self._decode = decode
        self._clock = clock
        self._cached: tuple[str, ...] | None = None
        self._read_at = -math.inf
        self._last_refresh = clock()
        self._lock = threading.Lock()

    def current(self) -> tuple[str, ...]:
        cached = self._cached
        if cached is not None and self._clock() - self._read_at < SECRET_MAX_AGE_SECONDS:
            return cached
        return self._read()

    def refreshed(self) -> tuple[str, ...] | None:
        with self._lock:
            now = self._clock()
            if now - self._last_refresh < MIN_SECONDS_BETWEEN_REFRESHES:
                return None
            self._last_refresh = now
        return self._read()

    def _read(self) -> tuple[str, ...]:
        try:
            response = self._client.get_secret_value(SecretId=self._secret_id)
        except (BotoCoreError, ClientError) as error:
            # The error's type is what an operator needs; its text is not passed on.
            raise SecretsUnavailableError(type(error).__name__) from error
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise SecretsUnavailableError("secret is not a string")
        secrets = parse_accepted_secrets(value)
        if self._decode is not None:
            secrets = tuple(self._decode(secret) for secret in secrets)
        # Cached parsed and decoded: warm requests only compare signatures.
        self._cached, self._read_at = secrets, self._clock()
        return secrets

    def __repr__(self) -> str:
        return f"SecretsManagerWebhookSecrets({self._secret_id!r})"

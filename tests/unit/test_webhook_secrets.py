"""The webhook secrets adapter: one Secrets Manager read per max age, rate-limited re-reads, rotation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from fanfare_sync.adapters.webhook_secrets import (
    MIN_SECONDS_BETWEEN_REFRESHES,
    SECRET_MAX_AGE_SECONDS,
    SecretsManagerWebhookSecrets,
)
from fanfare_sync.errors import SecretsUnavailableError
from fanfare_sync.logic.verify_signature import decode_woocommerce_secret


@dataclass
class FakeSecretsManager:
    """Answers GetSecretValue with `value` (or raises `error`), counting the calls."""

    value: Any = "s3cret"
    error: Exception | None = None
    calls: list[str] = field(default_factory=list)

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.calls.append(SecretId)
        if self.error is not None:
            raise self.error
        if isinstance(self.value, bytes):
            return {"SecretBinary": self.value}
        return {"SecretString": self.value}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def secrets(client: FakeSecretsManager, clock: Clock, **kwargs: Any) -> SecretsManagerWebhookSecrets:
    return SecretsManagerWebhookSecrets("arn:secret", client, clock=clock, **kwargs)


def test_the_secret_is_read_once_per_max_age() -> None:
    client, clock = FakeSecretsManager(), Clock()
    adapter = secrets(client, clock)
    assert adapter.current() == ("s3cret",)
    clock.now += SECRET_MAX_AGE_SECONDS - 1
    client.value = "rotated"
    assert adapter.current() == ("s3cret",)
    assert client.calls == ["arn:secret"]
    clock.now += 1
    assert adapter.current() == ("rotated",)
    assert len(client.calls) == 2


def test_a_mismatch_rereads_at_once_but_at_most_every_refresh_interval() -> None:
    client, clock = FakeSecretsManager(), Clock()
    adapter = secrets(client, clock)
    adapter.current()
    client.value = "rotated"
    # Just after the container started (or re-read), forged requests cannot make it call again.
    assert adapter.refreshed() is None
    clock.now += MIN_SECONDS_BETWEEN_REFRESHES
    assert adapter.refreshed() == ("rotated",)
    assert adapter.current() == ("rotated",)  # the re-read value is the cached one now
    assert adapter.refreshed() is None
    assert len(client.calls) == 2


def test_a_json_array_accepts_every_secret_of_a_rotation() -> None:
    adapter = secrets(FakeSecretsManager(value=json.dumps(["new", "old"])), Clock())
    assert adapter.current() == ("new", "old")


def test_woocommerce_secrets_are_decoded_as_wordpress_stores_them() -> None:
    adapter = secrets(FakeSecretsManager(value="a&amp;b"), Clock(), decode=decode_woocommerce_secret)
    assert adapter.current() == ("a&b",)


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com/"),
        ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "GetSecretValue"),
    ],
)
def test_secrets_manager_failures_are_unavailable_never_a_crash(error: Exception) -> None:
    adapter = secrets(FakeSecretsManager(error=error), Clock())
    with pytest.raises(SecretsUnavailableError, match=type(error).__name__):
        adapter.current()


def test_a_failed_read_is_not_cached() -> None:
    client = FakeSecretsManager(error=EndpointConnectionError(endpoint_url="https://x"))
    adapter = secrets(client, Clock())
    with pytest.raises(SecretsUnavailableError):
        adapter.current()
    client.error = None
    assert adapter.current() == ("s3cret",)


def test_a_binary_secret_is_refused_and_its_value_never_shown() -> None:
    adapter = secrets(FakeSecretsManager(value=b"binary"), Clock())
    with pytest.raises(SecretsUnavailableError, match="not a string"):
        adapter.current()
    assert "s3cret" not in repr(secrets(FakeSecretsManager(), Clock()))

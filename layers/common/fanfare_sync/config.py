"""Function configuration from the environment (set by template.yaml, or by the local runtime)."""

from __future__ import annotations

import os


class ConfigurationError(RuntimeError):
    """A required setting is missing: the function cannot start (a deploy or local-runtime bug)."""


def required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"environment variable {name} is not set; template.yaml sets it for every function"
        )
    return value

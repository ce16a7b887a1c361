"""A local Fanfare: the documented admission-completion contract plus fault injection, stdlib only."""

from fanfare_sync_cli.sandbox.server import (
    FanfareSandbox,
    FaultSpecError,
    RecordedCompletion,
    RecordedRequest,
)

__all__ = ["FanfareSandbox", "FaultSpecError", "RecordedCompletion", "RecordedRequest"]

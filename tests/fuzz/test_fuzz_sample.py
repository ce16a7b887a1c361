"""A bounded, reproducible sample of the webhook fuzzer runs in `make test`; `make fuzz` runs 100,000."""

from __future__ import annotations

from tests.fuzz.fuzz_webhooks import run


def test_two_thousand_fuzzed_webhooks_keep_every_invariant() -> None:
    report = run(count=2_000, seed=20261127)
    assert report.inputs == 2_000
    # The sample must exercise the deep paths, not only the signature check.
    assert report.outcomes["queued"] > 50
    assert report.outcomes["malformed"] > 50
    assert report.outcomes["unauthorized"] > 50
    assert report.queued == report.outcomes["queued"]

"""A bounded, reproducible sample of the webhook fuzzer (`make fuzz` runs 100,000 inputs)."""

from __future__ import annotations

from tests.fuzz.fuzz_webhooks import run
from tests.reliability.report import Report, Row


def test_two_thousand_fuzzed_webhooks_keep_every_invariant(report: Report) -> None:
    # Every input is checked inside run(): no 500, no crash, nothing queued without a valid signature.
    fuzzed = run(count=2_000, seed=20261127)
    assert fuzzed.inputs == 2_000
    # The sample must exercise the deep paths, not only the signature check.
    assert fuzzed.outcomes["queued"] > 50
    assert fuzzed.outcomes["malformed"] > 50
    assert fuzzed.outcomes["unauthorized"] > 50
    assert fuzzed.queued == fuzzed.outcomes["queued"]
    report.add(
        Row(
            scenario="Forged, mutated and hostile webhooks (fuzz sample)",
            inputs="2,000 webhooks",
            faults=(
                f"{fuzzed.outcomes['unauthorized']} forged or unsigned, "
                f"{fuzzed.outcomes['malformed']} malformed"
            ),
            lost=0,
            duplicate_completions=0,
            unauthorized_queued=0,
        )
    )

"""fanfare-sync benchmarks (`make bench`): ratios measured side by side, never timing assertions."""

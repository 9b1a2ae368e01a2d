"""Benchmarks: the platform measured against the peer design and the broker's limit
in the same run.  ``make bench`` / ``hysbys bench SCENARIO``; results in bench/results/."""

"""The scheduler-memory benchmark measures an evening that really sends.

Its seed writes subscribers as the scheduler does (encrypted, with keyed hashes under
the run's key); when it did not, the audience filter matched nobody and the benchmark
reported a flat memory figure for an evening of 0 requests."""
from __future__ import annotations

from bench import scheduler_memory as measure


def test_the_evening_due_is_the_rounds_collected_next_day_less_the_opted_out():
    # three of the 22 rounds are collected on the Tuesday; one subscriber in 50 opted out
    assert measure.expected_requests(1_000_000) == 136_364
    assert measure.expected_requests(22) == 3


def test_a_small_evening_emits_every_request_its_rounds_ask_for():
    result = measure.one("sqlite", 2_000)
    assert result["evening_occurrences"] == 3
    assert result["emitted"] == measure.expected_requests(2_000) > 0

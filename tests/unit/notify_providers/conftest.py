"""Fixtures for the provider, dispatcher and receipt tests (helpers in providers_support)."""
from __future__ import annotations

import pytest

from tests.unit.notify_providers.providers_support import Clock, make_harness


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_notify(embedded_settings, clock):
    """Build the notify service with the given providers and a fast retry policy."""
    built = []

    def _make(providers: dict | None = None, **options):
        harness = make_harness(embedded_settings, clock, providers, **options)
        built.append(harness)
        return harness

    yield _make
    for harness in built:
        harness.db.dispose()

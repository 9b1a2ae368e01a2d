"""The security tier's world: an embedded platform with two tenants that own one of everything."""
from __future__ import annotations

import pytest

from services.embedded import Platform
from tests.security import world as world_module


@pytest.fixture
def world(embedded_settings):
    platform = Platform(embedded_settings)
    platform.migrate()
    platform.start()
    try:
        yield world_module.build(platform)
    finally:
        platform.stop()

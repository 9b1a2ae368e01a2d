"""Fixtures for the console's tests (helpers in tests/console/support.py).

* ``console``: notify's app with the console, a clock the test moves (SQLite);
  ``any_console``: the same on SQLite and then on PostgreSQL.
* ``live``: the embedded platform on real ports; ``browser``: headless Chromium.
"""
from __future__ import annotations

import shutil

import pytest

from services.embedded import Platform
from services.notify import wiring as notify_wiring
from tests.console.support import AXE, BUILT, CHROMEDRIVER, CHROMIUM, FLAGS, Clock, Console


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def console(embedded_settings, clock) -> Console:
    service = notify_wiring.build(embedded_settings)
    service.runtime.migrate()
    yield Console(service, clock)
    service.runtime.db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_console(request, tmp_path, clock) -> Console:
    """The console on SQLite, then on a throwaway PostgreSQL database."""
    import tests.conftest as root  # its settings helper (the same as every test's)

    settings = root._base_settings(tmp_path) if request.param == "sqlite" else \
        root._base_settings(tmp_path, database_url=request.getfixturevalue("pg_url"))
    service = notify_wiring.build(settings)
    service.runtime.migrate()
    yield Console(service, clock)
    service.runtime.db.dispose()


# -- the browser ---------------------------------------------------------------------------

@pytest.fixture
def browser(tmp_path):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the browser tests need Debian's Chromium. "
                    "Run `make deps-browser` (apt-get install -y chromium chromium-driver).")
    if not AXE.exists() or not BUILT.exists():
        pytest.fail("the console's front end is not built: run `make console-assets`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def live(embedded_settings):
    """The embedded platform on real ports (notify's console at ``live.url``)."""
    platform = Platform(embedded_settings)
    platform.migrate()
    platform.start()
    platform.url = platform.urls()["notify"]
    yield platform
    platform.stop()



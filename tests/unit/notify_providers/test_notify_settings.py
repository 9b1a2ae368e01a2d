"""The provider and sweeper settings (HYSBYS_TWILIO_BASE_URL, HYSBYS_PROVIDER_TIMEOUT_SECONDS,
HYSBYS_SWEEP_STALE_SECONDS, HYSBYS_SWEEP_INTERVAL_SECONDS) are read and reach the service
that ``hysbys worker notify`` builds: what lets the fault tests run the real worker."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet

from services.notify.providers.base import OutgoingMessage
from services.notify.wiring import build
from shared.config import ConfigError, Settings
from tests.fakes.twilio_server import FakeTwilio

SID, TOKEN = "AC" + "0" * 32, "twilio-token-under-test"
PUBLIC = "https://hysbys.example"
MESSAGE = OutgoingMessage(notification_id="6d1c5a3e-0000-4000-8000-000000000002", channel="sms",
                          to="+447700900123", body="Mae'r casgliad yfory")


def env(tmp_path, **extra) -> dict[str, str]:
    return {"HYSBYS_VAR_DIR": str(tmp_path), "HYSBYS_SECRET_KEY": Fernet.generate_key().decode(),
            "HYSBYS_ADMIN_TOKEN": "settings-test-token", "HYSBYS_PUBLIC_BASE_URL": PUBLIC, **extra}


@pytest.fixture
def services():
    built = []

    def _build(settings: Settings, **options):
        svc = build(settings, **options)
        built.append(svc)
        return svc

    yield _build
    for svc in built:
        svc.runtime.db.dispose()


def test_the_worker_sends_twilio_texts_to_the_configured_address_with_the_configured_timeout(
        tmp_path, services):
    with FakeTwilio(SID, TOKEN, from_number="+447700900400",
                    status_callback=PUBLIC + "/callbacks/twilio/status") as fake:
        settings = Settings.from_env(env(tmp_path, HYSBYS_TWILIO_BASE_URL=fake.url + "/",
                                         HYSBYS_PROVIDER_TIMEOUT_SECONDS="2.5"))
        svc = services(settings)
        twilio = svc.registry.factories["twilio"]
        twilio.build(fake.credentials(), settings).send(MESSAGE)

    assert fake.problems == []
    assert [m.body for m in fake.messages] == [MESSAGE.body]
    assert (twilio.base_url, twilio.timeout) == (fake.url, 2.5)
    assert svc.registry.factories["notify"].timeout == 2.5
    assert svc.registry.factories["smtp"].timeout == 2.5


def test_the_sweeper_waits_and_looks_as_configured(tmp_path, services):
    settings = Settings.from_env(env(tmp_path, HYSBYS_SWEEP_STALE_SECONDS="20",
                                     HYSBYS_SWEEP_INTERVAL_SECONDS="3"))
    guard = services(settings).dispatcher.guard

    assert (guard.stale_after, guard.sweep_every) == (dt.timedelta(seconds=20), 3.0)


def test_unset_the_worker_reaches_twilio_itself_and_sweeps_after_ten_minutes(tmp_path, services):
    settings = Settings.from_env(env(tmp_path))
    svc = services(settings)

    assert svc.registry.factories["twilio"].base_url is None
    assert svc.registry.factories["twilio"].timeout == 10.0
    assert (svc.dispatcher.guard.stale_after, svc.dispatcher.guard.sweep_every) == (
        dt.timedelta(minutes=10), 30.0)


def test_providers_and_safeguards_given_by_a_caller_win_over_the_settings(tmp_path, services):
    from services.notify.dispatcher import Safeguards
    from services.notify.providers.twilio import TwilioFactory

    settings = Settings.from_env(env(tmp_path, HYSBYS_TWILIO_BASE_URL="http://127.0.0.1:9",
                                     HYSBYS_SWEEP_STALE_SECONDS="20"))
    mine, guard = TwilioFactory(base_url="http://127.0.0.1:10"), Safeguards()
    svc = services(settings, providers={"twilio": mine}, safeguards=guard)

    assert svc.registry.factories["twilio"] is mine
    assert svc.dispatcher.guard is guard


@pytest.mark.parametrize("name", ["HYSBYS_SWEEP_STALE_SECONDS", "HYSBYS_SWEEP_INTERVAL_SECONDS",
                                  "HYSBYS_PROVIDER_TIMEOUT_SECONDS"])
@pytest.mark.parametrize("raw", ["ten", "0", "-5", "nan", "inf"])
def test_a_malformed_number_of_seconds_is_refused_naming_the_variable(tmp_path, name, raw):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env(tmp_path, **{name: raw}))

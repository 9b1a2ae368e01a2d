"""Circuit breaker, token bucket, provider order and weights, per-tenant adapters —
with an injected clock and a seeded random source, never sleeps."""
from __future__ import annotations

import logging
import random
from collections import Counter
from types import SimpleNamespace

import pytest

from services.notify.providers.choice import ProviderRegistry, credential_problems, weighted_order
from services.notify.providers.health import CircuitBreaker
from services.notify.providers.simulator import Simulator
from services.notify.providers.throttle import TokenBucket
from services.notify.providers.twilio import TwilioFactory, TwilioProvider
from shared.crypto import SecretBox
from shared.tenancy import Tenant
from tests.unit.notify_providers.providers_support import ScriptedProvider

# -- circuit breaker -------------------------------------------------------------


def test_a_circuit_opens_after_the_threshold_of_consecutive_outages(clock):
    breaker = CircuitBreaker(failure_threshold=3, cooldown=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record(outage=True)
    assert breaker.state == "closed"

    breaker.record(outage=True)

    assert breaker.state == "open"
    assert not breaker.allow() and not breaker.available()


def test_an_answer_that_is_not_an_outage_resets_the_count(clock):
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    breaker.record(outage=True)
    breaker.record(outage=True)
    breaker.record(outage=False)       # e.g. "invalid number": the provider is up
    breaker.record(outage=True)

    assert breaker.state == "closed"


def test_after_the_cool_down_exactly_one_trial_call_is_let_through(clock):
    breaker = CircuitBreaker(failure_threshold=1, cooldown=30, clock=clock)
    breaker.record(outage=True)
    clock.advance(29.9)
    assert not breaker.allow()

    clock.advance(0.2)
    assert breaker.state == "half-open" and breaker.available()
    assert breaker.allow(), "the trial"
    assert not breaker.allow() and not breaker.available(), "only one trial at a time"


def test_a_successful_trial_closes_the_circuit(clock):
    breaker = CircuitBreaker(failure_threshold=1, cooldown=30, clock=clock)
    breaker.record(outage=True)
    clock.advance(30)
    breaker.allow()

    breaker.record(outage=False)

    assert breaker.state == "closed" and breaker.allow()


def test_a_failed_trial_opens_the_circuit_for_another_cool_down(clock):
    breaker = CircuitBreaker(failure_threshold=5, cooldown=30, clock=clock)
    for _ in range(5):
        breaker.record(outage=True)
    clock.advance(30)
    breaker.allow()

    breaker.record(outage=True)

    assert breaker.state == "open"
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


# -- token bucket ----------------------------------------------------------------


def test_a_bucket_gives_its_rate_per_second_and_no_more(clock):
    bucket = TokenBucket(10, clock=clock)
    assert sum(bucket.try_take() for _ in range(15)) == 10

    clock.advance(0.5)
    assert sum(bucket.try_take() for _ in range(15)) == 5
    assert bucket.wait_time() == pytest.approx(0.1)


def test_a_bucket_never_holds_more_than_its_capacity(clock):
    bucket = TokenBucket(10, clock=clock)
    clock.advance(3600)

    assert sum(bucket.try_take() for _ in range(100)) == 10


def test_a_message_dearer_than_the_bucket_goes_when_it_is_full_and_leaves_a_debt(clock):
    bucket = TokenBucket(5, clock=clock)

    assert bucket.try_take(6), "a six-segment text on a 5/s sender is not starved"
    assert not bucket.try_take(1)
    clock.advance(0.2)
    assert not bucket.try_take(1), "the debt is paid back first"
    clock.advance(0.2)
    assert bucket.try_take(1)


# -- provider order and weights ----------------------------------------------------


def test_without_weights_the_tenants_order_is_kept():
    assert weighted_order(["twilio", "notify"], {}, random.Random(1)) == ["twilio", "notify"]


def test_weights_pick_the_first_provider_in_proportion_and_the_rest_follow_as_failover():
    rng = random.Random(7)
    firsts = Counter(weighted_order(["twilio", "notify"], {"twilio": 3, "notify": 1}, rng)[0]
                     for _ in range(4000))
    assert 0.70 < firsts["twilio"] / 4000 < 0.80
    assert weighted_order(["twilio", "notify", "smtp"], {"notify": 1}, rng) == \
        ["notify", "twilio", "smtp"], "the others keep the tenant's order"


def test_a_provider_without_a_weight_is_only_ever_failover():
    rng = random.Random(3)
    assert {weighted_order(["twilio", "notify"], {"notify": 2}, rng)[0] for _ in range(200)} == {"notify"}


# -- the registry: per-tenant adapters ----------------------------------------------


def tenant(box: SecretBox, providers: list[str], revision: int = 1, credentials: dict | None = None,
           **config) -> Tenant:
    return Tenant(id="7a1d1b0e-0000-4000-8000-000000000009", slug="penfro", revision=revision,
                  config={"providers": providers, **config},
                  config_encrypted=box.encrypt_json({"providers": credentials or {}}))


def sms(key_type: str = "live"):
    return SimpleNamespace(key_type=key_type, channel="sms")


TWILIO = {"account_sid": "AC" + "2" * 32, "auth_token": "secret-auth-token",
          "from_number": "+447700900400"}


@pytest.fixture
def box(embedded_settings) -> SecretBox:
    return SecretBox(embedded_settings.secret_key)


def registry(settings, box, allowed=("simulator", "twilio", "notify"), **shared) -> ProviderRegistry:
    return ProviderRegistry(settings.with_(allowed_providers=allowed), box,
                            {"simulator": Simulator(), **shared}, {"twilio": TwilioFactory()},
                            rng=random.Random(1))


def test_adapters_are_built_from_the_tenants_credentials_and_cached_per_revision(embedded_settings, box):
    reg = registry(embedded_settings, box)
    first = reg.choose(sms(), tenant(box, ["twilio"], 1, {"twilio": TWILIO}))
    again = reg.choose(sms(), tenant(box, ["twilio"], 1, {"twilio": TWILIO}))
    moved = {"twilio": {**TWILIO, "from_number": "+447700900401"}}
    changed = reg.choose(sms(), tenant(box, ["twilio"], 2, moved))

    assert isinstance(first[0], TwilioProvider) and first[0] is again[0]
    assert changed[0] is not first[0] and changed[0].sender == "+447700900401"


def test_providers_the_platform_does_not_allow_are_left_out(embedded_settings, box):
    reg = registry(embedded_settings, box, allowed=("simulator",))

    assert reg.choose(sms(), tenant(box, ["twilio", "simulator"], credentials={"twilio": TWILIO})) == \
        [reg.shared["simulator"]]


def test_a_test_key_never_leaves_the_platform(embedded_settings, box):
    reg = registry(embedded_settings, box)

    assert reg.choose(sms("test"), tenant(box, ["twilio"], credentials={"twilio": TWILIO})) == \
        [reg.shared["simulator"]]


def test_providers_that_cannot_take_the_channel_are_left_out(embedded_settings, box):
    smtp = ScriptedProvider("notify", ("email",))
    reg = registry(embedded_settings, box, notify=smtp)

    assert reg.choose(sms(), tenant(box, ["notify", "simulator"])) == [reg.shared["simulator"]]


def test_incomplete_credentials_are_skipped_and_never_logged(embedded_settings, box, caplog):
    reg = registry(embedded_settings, box)
    partial = {"account_sid": "AC" + "3" * 32, "auth_token": "do-not-log-me"}

    with caplog.at_level(logging.DEBUG):
        chosen = reg.choose(sms(), tenant(box, ["twilio", "simulator"], credentials={"twilio": partial}))

    assert chosen == [reg.shared["simulator"]]
    assert "from_number or messaging_service_sid" in caplog.text
    assert "do-not-log-me" not in caplog.text


def test_weights_choose_among_the_providers_that_can_send(embedded_settings, box):
    reg = registry(embedded_settings, box)
    reg.rng = random.Random(5)
    t = tenant(box, ["simulator", "twilio"], credentials={"twilio": TWILIO},
               provider_weights={"twilio": 1, "simulator": 0})

    assert [p.name for p in reg.choose(sms(), t)] == ["twilio", "simulator"]



def test_credentials_an_admin_patches_are_checked_naming_the_missing_field(embedded_settings):
    problems = credential_problems({
        "twilio": {"account_sid": "AC" + "1" * 32, "auth_token": "do-not-echo"},
        "notify": {"api_key": "short"},
        "smtp": {"host": "smtp.example", "from_address": "a@b.example"},
        "carrier-pigeon": {}}, embedded_settings)

    assert problems == [
        "provider_credentials.twilio: Twilio credentials lack from_number or messaging_service_sid",
        "provider_credentials.notify: GOV.UK Notify credentials lack an api_key of the form "
        "{key_name}-{service_id}-{secret}",
        "provider_credentials.carrier-pigeon is not a provider that takes credentials"]
    assert "do-not-echo" not in " ".join(problems)

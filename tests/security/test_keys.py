"""API keys: revocation everywhere, and what ``team`` and ``test`` keys can reach."""
from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
import sqlalchemy as sa

from services.embedded import Platform
from services.notify.models import Notification
from services.notify.providers.twilio import TwilioFactory
from tests.conftest import _base_settings, eventually
from tests.fakes.twilio_server import FakeTwilio
from tests.security.world import ADMIN, auth

REAL_CITIZEN = "+447400123456"          # a valid UK mobile outside Notify's test range
TEMPLATE = {"name": "t", "type": "sms", "body": {"en": "Bins tomorrow", "cy": "Biniau yfory"}}


def _tenant(notify: str, slug: str, **config) -> dict:
    tenant = requests.post(notify + "/admin/tenants", headers=ADMIN, timeout=10,
                           json={"name": slug, "slug": slug}).json()
    requests.patch(f"{notify}/admin/tenants/{tenant['id']}", headers=ADMIN, timeout=10,
                   json={"quiet_hours": None, **config}).raise_for_status()
    return tenant


def _key(notify: str, tenant: dict, key_type: str) -> dict:
    r = requests.post(f"{notify}/admin/tenants/{tenant['id']}/keys", headers=ADMIN, timeout=10,
                      json={"name": f"{key_type} key", "key_type": key_type})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_revoked_key_stops_working_in_notify_at_once_and_elsewhere_when_the_event_lands(platform):
    urls = platform.urls()
    tenant = _tenant(urls["notify"], "dirymu")
    key = _key(urls["notify"], tenant, "live")
    probes = {"notify": urls["notify"] + "/v2/templates", "inbound": urls["inbound"] + "/api/keywords",
              "scheduler": urls["scheduler"] + "/api/campaigns"}
    for service, url in probes.items():
        eventually(lambda u=url: requests.get(u, headers=auth(key["api_key"]), timeout=10).status_code
                   == 200, message=f"the key works in {service}")

    r = requests.delete(f"{urls['notify']}/admin/tenants/{tenant['id']}/keys/{key['id']}",
                        headers=ADMIN, timeout=10)
    revoked_at = time.monotonic()
    assert r.status_code == 204
    refused = requests.get(probes["notify"], headers=auth(key["api_key"]), timeout=10)
    assert refused.status_code == 403 and "revoked" in refused.text
    delays = {"notify": 0.0}
    for service in ("inbound", "scheduler"):
        eventually(lambda s=service: requests.get(probes[s], headers=auth(key["api_key"]),
                                                  timeout=10).status_code == 403,
                   interval=0.01, message=f"the revocation reaching {service}")
        delays[service] = round(time.monotonic() - revoked_at, 3)
    opened = requests.post(urls["inbound"] + "/open311/v2/requests.json", timeout=10, data={
        "jurisdiction_id": "dirymu", "api_key": key["api_key"], "service_code": "missed_collection",
        "address_string": "1 Stryd Fawr"})
    assert opened.status_code == 403, opened.text
    print(f"REVOCATION-DELAY-SECONDS {delays}")


@pytest.fixture
def with_twilio(tmp_path):
    """An embedded platform whose tenants may use a fake Twilio (and the simulator)."""
    fake = FakeTwilio("AC" + "2" * 32, "twilio-token", from_number="+447700900400").start()
    settings = _base_settings(tmp_path, allowed_providers=("simulator", "twilio"))
    platform = Platform(settings, providers={"twilio": TwilioFactory(base_url=fake.url)})
    platform.migrate()
    platform.start()
    yield platform, fake
    platform.stop()
    fake.stop()


def _twilio_tenant(platform: Platform, fake: FakeTwilio, slug: str) -> tuple[dict, str]:
    notify = platform.urls()["notify"]
    tenant = _tenant(notify, slug, providers=["twilio"], team_numbers=["+447700900123"],
                     provider_credentials={"twilio": fake.credentials()})
    template = requests.post(notify + "/api/templates", json=TEMPLATE, timeout=10,
                             headers=auth(tenant["api_key"])).json()["id"]
    return tenant, template


def _status(platform: Platform, tenant: dict, nid: str) -> str:
    r = requests.get(f"{platform.urls()['notify']}/v2/notifications/{nid}", timeout=10,
                     headers=auth(tenant["api_key"]))
    return r.json().get("status")


def test_a_test_key_only_ever_reaches_the_simulator_and_a_live_key_reaches_twilio(with_twilio):
    platform, fake = with_twilio
    tenant, template = _twilio_tenant(platform, fake, "prawf")
    notify = platform.urls()["notify"]
    sent = {}
    for kind in ("test_api_key", "api_key"):
        r = requests.post(notify + "/v2/notifications/sms", headers=auth(tenant[kind]), timeout=10,
                          json={"phone_number": REAL_CITIZEN, "template_id": template})
        assert r.status_code == 201, r.text
        sent[kind] = r.json()["id"]
    eventually(lambda: _status(platform, tenant, sent["test_api_key"]) == "delivered")
    eventually(lambda: _status(platform, tenant, sent["api_key"]) == "sent")
    assert len(fake.messages) == 1, "the test key's text reached Twilio"
    assert not fake.problems


def test_a_team_key_reaches_only_the_teams_own_numbers(with_twilio):
    platform, fake = with_twilio
    tenant, template = _twilio_tenant(platform, fake, "tim")
    team = _key(platform.urls()["notify"], tenant, "team")
    send = lambda number: requests.post(  # noqa: E731
        platform.urls()["notify"] + "/v2/notifications/sms", headers=auth(team["api_key"]),
        timeout=10, json={"phone_number": number, "template_id": template})
    refused = send(REAL_CITIZEN)
    assert refused.status_code == 400 and "team-only" in refused.text
    assert send("07700 900123").status_code == 201
    eventually(lambda: len(fake.messages) == 1)
    assert [m.to for m in fake.messages] == ["+447700900123"]


@pytest.mark.parametrize("key_type", ["test", "team"])
def test_a_test_or_team_key_cannot_schedule_texts_to_real_citizens(with_twilio, key_type):
    """Fails today (docs/reliability.md, finding F3): the scheduler accepts any key type,
    and the ticker's requests reach notify as ``live``."""
    platform, fake = with_twilio
    tenant, template = _twilio_tenant(platform, fake, f"amserlen-{key_type}")
    key = _key(platform.urls()["notify"], tenant, key_type)
    scheduler = platform.urls()["scheduler"]
    eventually(lambda: requests.get(scheduler + "/api/campaigns", headers=auth(key["api_key"]),
                                    timeout=10).status_code == 200, message="the key replicated")
    requests.post(scheduler + "/api/subscribers", headers=auth(key["api_key"]), timeout=10,
                  json={"phone": REAL_CITIZEN})
    due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    campaign = requests.post(scheduler + "/api/campaigns", headers=auth(key["api_key"]), timeout=10,
                             json={"name": "Bin night", "kind": "broadcast", "template_id": template,
                                   "channel": "sms", "send_at": due.isoformat(), "audience": {}})
    if campaign.status_code in (401, 403):
        return                    # refused outright: nothing can reach anyone
    assert campaign.status_code == 201, campaign.text

    def notification():
        with platform.notify.runtime.db.read() as session:
            # recipients are encrypted at rest: matched after reading
            return next(((n.key_type, n.status) for n in session.scalars(sa.select(Notification))
                         if n.recipient == REAL_CITIZEN), None)
    eventually(lambda: notification() is not None and notification()[1] not in ("created", "sending"),
               message="the scheduled text settled")
    time.sleep(0.5)
    assert fake.messages == [], f"a {key_type} key's campaign texted a real citizen through Twilio"

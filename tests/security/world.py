"""Two tenants on one embedded platform, each owning one of everything.

The security tests ask, as tenant A, for tenant B's things.  :func:`build` gives each
tenant a template, a notification, a suppression, a bulk job, a received text, a
service request (from a text and from Open311), a round, a subscriber, a broadcast
and an appointment campaign, and an appointment — every kind of row an endpoint
takes an id of — with markers that a listing must never show to the other tenant.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import requests
import sqlalchemy as sa
from notifications_python_client.authentication import create_jwt_token
from twilio.request_validator import RequestValidator

from services.embedded import Platform
from tests.conftest import eventually

ADMIN = {"Authorization": "Bearer test-admin-token"}


def auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


@dataclass
class Owner:
    """One tenant and the ids of what it owns."""

    slug: str
    tenant: dict
    number: str                    # its inbound number
    citizen: str                   # a citizen who texts it
    auth_token: str                # its Twilio auth token (webhook signatures)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.tenant["api_key"]

    def headers(self) -> dict:
        return auth(self.key)

    def markers(self) -> set[str]:
        """Strings only this tenant's rows contain: a listing for the other must show none."""
        return {v for v in self.ids.values() if len(v) >= 8} | {self.citizen, self.slug.upper()}


@dataclass
class World:
    platform: Platform
    a: Owner
    b: Owner

    def url(self, service: str) -> str:
        return self.platform.urls()[service]


def _ok(response: requests.Response, *codes: int) -> dict:
    assert response.status_code in (codes or (200, 201)), (response.request.url, response.text)
    return response.json() if "json" in response.headers.get("Content-Type", "") else {}


def _tenant(platform: Platform, slug: str, number: str, citizen: str, suppressed: str) -> Owner:
    notify = platform.urls()["notify"]
    tenant = _ok(requests.post(notify + "/admin/tenants", headers=ADMIN, timeout=10,
                               json={"name": slug.title(), "slug": slug}))
    token = uuid.uuid4().hex
    _ok(requests.patch(f"{notify}/admin/tenants/{tenant['id']}", headers=ADMIN, timeout=10, json={
        "quiet_hours": None, "inbound_numbers": [number],
        "provider_credentials": {"twilio": {"account_sid": "AC" + "1" * 32, "auth_token": token,
                                            "from_number": number}}}))
    owner = Owner(slug, tenant, number, citizen, token)
    owner.ids["suppressed"] = suppressed
    return owner


def _notify_rows(w: World, o: Owner) -> None:
    notify, h = w.url("notify"), o.headers
    o.ids["template"] = _ok(requests.post(notify + "/api/templates", headers=h(), timeout=10, json={
        "name": f"{o.slug.upper()} bins", "type": "sms",
        "body": {"en": f"{o.slug.upper()} bins ((day))", "cy": f"{o.slug.upper()} biniau ((day))"}}))["id"]
    o.ids["notification"] = _ok(requests.post(notify + "/v2/notifications/sms", headers=h(), timeout=10,
                                              json={"phone_number": o.citizen, "reference": o.slug.upper(),
                                                    "template_id": o.ids["template"],
                                                    "personalisation": {"day": "Monday"}}))["id"]
    _ok(requests.post(notify + "/api/suppressions", headers=h(), timeout=10,
                      json={"recipient": o.ids["suppressed"], "channel": "sms"}))
    o.ids["bulk"] = _ok(requests.post(notify + "/api/bulk", headers=h(), timeout=10, json={
        "template_id": o.ids["template"],
        "rows": [{"phone_number": o.citizen, "personalisation": {"day": "Tuesday"}}]}))["id"]


def _inbound_rows(w: World, o: Owner) -> None:
    inbound = w.url("inbound")
    url = inbound + "/webhooks/twilio/sms"
    form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32, "From": o.citizen,
            "To": o.number, "Body": f"Question from {o.slug.upper()}", "NumMedia": "0"}
    signature = RequestValidator(o.auth_token).compute_signature(url, form)
    _ok(requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10), 200)
    o.ids["received_text"] = form["MessageSid"]
    opened = requests.post(f"{inbound}/open311/v2/requests.json", timeout=10, data={
        "jurisdiction_id": o.slug, "api_key": o.key, "service_code": "missed_collection",
        "address_string": f"1 {o.slug.upper()} Street", "description": "bin missed"})
    created = _ok(opened)[0]
    o.ids["open311_request"] = created["service_request_id"]
    with w.platform.inbound.runtime.db.read() as session:
        o.ids["open311_token"] = session.execute(sa.text(
            "SELECT token FROM service_requests WHERE reference = :r"), {"r": created["service_request_id"]}
        ).scalar()

    def from_text() -> list:
        listed = requests.get(inbound + "/api/service-requests", headers=o.headers(), timeout=10).json()
        rows = listed.get("service_requests", listed) if isinstance(listed, dict) else listed
        return [r for r in rows if r.get("source") == "sms"]
    o.ids["service_request"] = eventually(from_text, message="a service request from the text")[0]["id"]
    o.ids["conversation"] = requests.get(inbound + "/api/conversations", headers=o.headers(),
                                         timeout=10).json()["conversations"][0]["id"]


def _scheduler_rows(w: World, o: Owner) -> None:
    scheduler, h = w.url("scheduler"), o.headers
    o.ids["round"] = f"R{o.slug.upper()}"
    _ok(requests.post(scheduler + "/api/rounds", headers=h(), timeout=10, json={
        "code": o.ids["round"], "name": f"Round {o.slug}", "rrule": "FREQ=WEEKLY;BYDAY=TU",
        "start": "2099-01-06", "description": {"cy": "bagiau", "en": "bags"}}))
    _ok(requests.post(scheduler + "/api/subscribers", headers=h(), timeout=10,
                      json={"phone": o.citizen, "attributes": {"round": o.ids["round"]}}))
    o.ids["subscriber"] = _ok(requests.get(scheduler + "/api/subscribers", headers=h(), timeout=10,
                                           params={"phone": o.citizen}))["subscribers"][0]["id"]
    send_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).isoformat()
    o.ids["campaign"] = _ok(requests.post(scheduler + "/api/campaigns", headers=h(), timeout=10, json={
        "name": f"{o.slug.upper()} broadcast", "kind": "broadcast", "template_id": o.ids["template"],
        "channel": "sms", "send_at": send_at, "audience": {}}))["id"]
    o.ids["appointment_campaign"] = _ok(requests.post(scheduler + "/api/campaigns", headers=h(), timeout=10,
                                                      json={"name": "Clinic", "kind": "appointment",
                                                            "template_id": o.ids["template"],
                                                            "channel": "sms"}))["id"]
    o.ids["appointment"] = f"APPT-{o.slug.upper()}-{uuid.uuid4().hex[:6]}"
    _ok(requests.post(scheduler + "/api/appointments", headers=h(), timeout=10, json={
        "external_reference": o.ids["appointment"], "campaign_id": o.ids["appointment_campaign"],
        "phone": o.citizen, "language": "cy",
        "starts_at": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=20)).isoformat()}))


def _replica_has_number(platform: Platform, o: Owner) -> bool:
    from shared.tenancy import Tenant

    with platform.inbound.runtime.db.read() as session:
        row = session.get(Tenant, o.tenant["id"])
        return row is not None and o.number in (row.config or {}).get("inbound_numbers", [])


def build(platform: Platform) -> World:
    """Two tenants, ``a`` and ``b``, each with one of everything; replicas caught up."""
    # GOV.UK Notify's test range (07700 900xxx): the simulator answers, nobody is texted
    w = World(platform, _tenant(platform, "aber", "+447700900701", "+447700900311", "+447700900611"),
              _tenant(platform, "bryn", "+447700900702", "+447700900322", "+447700900622"))
    for owner in (w.a, w.b):
        for service in ("inbound", "scheduler"):
            eventually(lambda s=service, o=owner: requests.get(
                f"{w.url(s)}/api/{'keywords' if s == 'inbound' else 'campaigns'}",
                headers=o.headers(), timeout=10).status_code == 200,
                message=f"{owner.slug} replicated to {service}")
        # the number comes in a later tenant.changed than the keys: a text sent before
        # inbound's replica has it is (rightly) ignored, and the world would lack its rows
        eventually(lambda o=owner: _replica_has_number(platform, o),
                   message=f"{owner.slug}'s inbound number replicated to inbound")
        _notify_rows(w, owner)
        _inbound_rows(w, owner)
        _scheduler_rows(w, owner)
    for owner in (w.a, w.b):
        eventually(lambda o=owner: requests.get(
            f"{w.url('notify')}/v2/received-text-messages", headers=o.headers(), timeout=10
        ).json().get("received_text_messages"), message="the received text reached notify")
    return w

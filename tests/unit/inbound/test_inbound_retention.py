"""Replies are personal data: gone after the tenant's retention period, kept before it.
A service request stays (the council's record) but, once closed and past the period,
no longer says who asked or what they wrote."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from inbound_support import bearer, tenant_with_key

from services.inbound import retention
from services.inbound.models import Conversation, InboundMessage, ServiceRequest

NOW = dt.datetime.now(dt.timezone.utc)


def test_replies_older_than_the_retention_period_are_purged_and_newer_ones_kept(inbound, tenant):
    with inbound.runtime.db.transaction() as session:
        for days, sid in ((30, "SMold"), (1, "SMnew")):
            session.add(InboundMessage(
                id=str(uuid.uuid4()), tenant_id=tenant.id, provider="twilio",
                provider_reference=sid, from_number="+447700900123", to_number="+447700900999",
                body="STOP", received_at=NOW - dt.timedelta(days=days)))
        session.add(Conversation(tenant_id=tenant.id, recipient="+447700900123",
                                 notification_id=str(uuid.uuid4()),
                                 sent_at=NOW - dt.timedelta(days=30)))
    retention.run_once(inbound.runtime.db)
    with inbound.runtime.db.read() as session:
        left = session.scalars(sa.select(InboundMessage.provider_reference)).all()
        contexts = session.scalars(sa.select(Conversation)).all()
    assert left == ["SMnew"] and contexts == []


def _request(session, tenant, reference: str, status: str, days_ago: int) -> None:
    when = NOW - dt.timedelta(days=days_ago)
    session.add(ServiceRequest(
        id=str(uuid.uuid4()), tenant_id=tenant.id, reference=reference, token=str(uuid.uuid4()),
        service_code="missed_collection", status=status, status_notes="crew sent",
        description="Bin missed at number 4, Ceri", source="sms", phone="+447700900123",
        email="ceri@example.com", first_name="Ceri", last_name="Jones", account_id="A1",
        device_id="D1", media_url="https://example.com/bin.jpg", address="4 Heol y Bont",
        zipcode="SA1 1AA", requested_at=when, updated_at=when, attributes={}))


def test_a_closed_request_past_retention_keeps_the_record_and_loses_the_citizen(inbound, tenant):
    with inbound.runtime.db.transaction() as session:
        _request(session, tenant, "HYS-OLDCLS", "closed", 30)    # blanked
        _request(session, tenant, "HYS-OLDOPN", "open", 30)      # the team still needs them
        _request(session, tenant, "HYS-NEWCLS", "closed", 1)     # within the period
    assert retention.run_once(inbound.runtime.db)["service_requests"] == 1
    with inbound.runtime.db.read() as session:
        rows = {r.reference: r for r in session.scalars(sa.select(ServiceRequest))}
    old = rows["HYS-OLDCLS"]
    assert [getattr(old, c) for c in retention.CITIZEN_COLUMNS] == [None] * 8
    assert (old.status, old.service_code, old.status_notes, old.address, old.zipcode) == (
        "closed", "missed_collection", "crew sent", "4 Heol y Bont", "SA1 1AA")
    for kept in ("HYS-OLDOPN", "HYS-NEWCLS"):
        assert rows[kept].phone == "+447700900123"
        assert rows[kept].description == "Bin missed at number 4, Ceri"
    # blanked once: a second run finds nothing to do
    assert retention.run_once(inbound.runtime.db)["service_requests"] == 0


def test_a_blanked_request_still_shows_in_the_team_list_and_on_open311(inbound, client):
    tenant, key = tenant_with_key(inbound)
    with inbound.runtime.db.transaction() as session:
        _request(session, tenant, "HYS-OLDCLS", "closed", 30)
    retention.run_once(inbound.runtime.db)
    rows = client.get("/api/service-requests", headers=bearer(key)).get_json()["service_requests"]
    assert [(r["reference"], r["status"], r["phone"], r["description"]) for r in rows] == [
        ("HYS-OLDCLS", "closed", None, None)]
    public = client.get(f"/open311/v2/requests.json?jurisdiction_id={tenant.slug}")
    assert public.status_code == 200
    assert [r["service_request_id"] for r in public.get_json()] == ["HYS-OLDCLS"]


def test_the_inbound_worker_runs_the_purge(inbound):
    assert "inbound-retention" in [getattr(loop, "__name__", "") for loop in inbound.background().loops]

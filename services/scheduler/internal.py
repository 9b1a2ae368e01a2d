"""Answers for the other services (platform admin token, not a tenant's key).

``GET /internal/tenants/<id>/next-collection?phone=`` is how the inbound
service answers WHEN / PRYD; ``GET /internal/tenants/<id>/subscribers?phone=``
gives it a subscriber's attributes (UPRN, address) for a MISSED report;
``GET /internal/tenants/<id>/citizens?phone=`` the language recorded for a number
and its live appointments, so a reply is answered in the citizen's language and
``CANSLO 4821`` acts on the appointment whose code it names.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import request
from flask_smorest import Blueprint

from services.scheduler import appointments, rounds, schemas
from services.scheduler.models import Subscriber
from shared import phone, pii
from shared.db import utcnow
from shared.errors import NotFound, ValidationError
from shared.http import require_admin
from shared.runtime import Runtime


def blueprint(runtime: Runtime) -> Blueprint:
    blp = Blueprint("internal", __name__, url_prefix="/internal",
                    description="Service-to-service answers (admin token)")

    @blp.route("/tenants/<tenant_id>/next-collection", methods=["GET"])
    @blp.alt_response(200, schema=schemas.NextCollection, success=True)
    @blp.doc(security=[{"bearer": []}])
    def next_collection(tenant_id: str):
        """The next collection date of the subscriber with this phone, or null"""
        require_admin(runtime)
        tid, number = _tenant(tenant_id), _phone()
        with runtime.db.read() as session:
            return rounds.next_collection(session, tid, number, utcnow())

    @blp.route("/tenants/<tenant_id>/subscribers", methods=["GET"])
    @blp.alt_response(200, schema=schemas.SubscriberByPhone, success=True)
    @blp.doc(security=[{"bearer": []}])
    def subscriber_by_phone(tenant_id: str):
        """The subscriber with this phone: language, attributes, opted out"""
        require_admin(runtime)
        tid, number = _tenant(tenant_id), _phone()
        with runtime.db.read() as session:
            sub = subscriber_of_phone(session, tid, number)
            if sub is None:
                raise NotFound()
            return {"id": sub.id, "phone": sub.phone, "email": sub.email,
                    "language": sub.language, "attributes": sub.attributes or {},
                    "opted_out": sub.opted_out}

    @blp.route("/tenants/<tenant_id>/citizens", methods=["GET"])
    @blp.alt_response(200, schema=schemas.Citizen, success=True)
    @blp.doc(security=[{"bearer": []}])
    def citizen(tenant_id: str):
        """What a reply from this phone is answered with: the language recorded for it
        (the subscriber's, else its appointments' when they agree) and its live
        appointments with their references and reply codes (200 for any number)"""
        require_admin(runtime)
        tid, number = _tenant(tenant_id), _phone()
        with runtime.db.read() as session:
            sub = subscriber_of_phone(session, tid, number)
            booked = appointments.live_of_phone(session, tid, number)
        patient = {a.language for a in booked if a.language}
        language = (sub.language if sub and sub.language else
                    patient.pop() if len(patient) == 1 else None)
        return {"phone": number, "language": language,
                "subscriber_language": sub.language if sub else None,
                "appointments": [appointments.for_replies(a) for a in booked]}

    return blp


def subscriber_of_phone(session, tenant_id: str, number: str) -> Subscriber | None:
    """The one place a subscriber is looked up by phone here (by the number's keyed hash)."""
    return session.scalars(sa.select(Subscriber).where(
        Subscriber.tenant_id == tenant_id,
        Subscriber.phone_hash == pii.lookup_hash(session, number))).first()


def _tenant(tenant_id: str) -> str:
    try:
        return str(uuid.UUID(tenant_id))
    except ValueError:
        raise NotFound() from None


def _phone() -> str:
    raw = request.args.get("phone")
    if not raw:
        raise ValidationError("phone is a required property")
    try:
        return phone.normalise(raw)
    except phone.InvalidPhoneNumber as exc:
        raise ValidationError(f"phone {exc}") from exc

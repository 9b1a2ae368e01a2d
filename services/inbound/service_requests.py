"""Where a service request is made and changed: reference, status history, events.

A request comes from a citizen's text (MISSED, a question) or from an Open311
client; the tenant's team changes its status over the native API.  Every
change writes a history row and a ``service_request.created|updated`` event
in the caller's transaction, so the request and its event are one.
"""
from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.inbound import catalogue
from services.inbound.models import (
    REQUEST_STATUSES,
    Reference,
    ServiceRequest,
    ServiceRequestChange,
)
from shared import events, outbox
from shared.db import insert_for, utcnow
from shared.errors import NotFound, ValidationError
from shared.http import iso

# No 0/O, 1/I: a reference is read aloud on the phone and typed back by hand.
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 6


def allocate_reference(session: Session, tenant_id: str) -> str:
    """A new ``HYS-XXXXXX``, never handed out before (to anyone, for anything)."""
    for _ in range(20):
        reference = "HYS-" + "".join(secrets.choice(REFERENCE_ALPHABET)
                                     for _ in range(REFERENCE_LENGTH))
        stmt = insert_for(session, Reference).values(
            reference=reference, tenant_id=tenant_id, created_at=utcnow()
        ).on_conflict_do_nothing()
        if session.execute(stmt).rowcount == 1:
            return reference
    raise RuntimeError("could not find a free HYS reference in 20 tries")


def create(session: Session, tenant_id: str, *, service_code: str, source: str,
           changed_by: str, cid: str | None = None, reference: str | None = None,
           service_types: Mapping[str, Any] | None = None, **fields) -> ServiceRequest:
    """A new open request with its first history row and ``service_request.created``.
    ``service_types``: the tenant's, where the caller has them (else read)."""
    if service_types is None:
        service_types = catalogue.for_tenant(session, tenant_id)
    if service_code not in service_types:
        raise ValidationError(f"service_code {service_code!r} is not a service of this tenant")
    now = utcnow()
    request = ServiceRequest(
        id=str(uuid.uuid4()), tenant_id=tenant_id,
        reference=reference or allocate_reference(session, tenant_id),
        token=str(uuid.uuid4()), service_code=service_code, status="open", source=source,
        requested_at=now, updated_at=now, attributes=fields.pop("attributes", None) or {},
        **fields)
    session.add(request)
    session.add(ServiceRequestChange(request_id=request.id, status="open",
                                     status_notes=None, changed_by=changed_by, changed_at=now))
    outbox.add(session, _event("service_request.created", request, cid))
    return request


def update(session: Session, request: ServiceRequest, *, changed_by: str,
           cid: str | None = None, **changes) -> bool:
    """Apply the team's changes (status, status_notes, ...); False when nothing changed."""
    status = changes.get("status", request.status)
    if status not in REQUEST_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(REQUEST_STATUSES)}")
    changed = {k: v for k, v in changes.items() if getattr(request, k) != v}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(request, name, value)
    request.updated_at = utcnow()
    session.add(ServiceRequestChange(request_id=request.id, status=request.status,
                                     status_notes=request.status_notes, changed_by=changed_by,
                                     changed_at=request.updated_at))
    outbox.add(session, _event("service_request.updated", request, cid))
    return True


def _event(type_: str, request: ServiceRequest, cid: str | None) -> events.Event:
    return events.make(type_, request.tenant_id, cid, request_id=request.id,
                       reference=request.reference, service_code=request.service_code,
                       status=request.status)


def find(session: Session, tenant_id: str, ident: str) -> ServiceRequest:
    """A tenant's request by reference (``HYS-…``) or id; 404 for anyone else's."""
    column = ServiceRequest.reference if ident.upper().startswith("HYS-") else ServiceRequest.id
    value = ident.upper() if column is ServiceRequest.reference else ident
    request = session.scalars(sa.select(ServiceRequest).where(
        ServiceRequest.tenant_id == tenant_id, column == value)).first()
    if request is None:
        raise NotFound()
    return request


def history(session: Session, request_id: str) -> list[ServiceRequestChange]:
    return list(session.scalars(sa.select(ServiceRequestChange).where(
        ServiceRequestChange.request_id == request_id).order_by(ServiceRequestChange.seq)))


def as_json(request: ServiceRequest, changes: list[ServiceRequestChange] | None = None) -> dict:
    """The native API's (and the tenant webhook's) view: everything the team needs."""
    body = {
        "id": request.id, "reference": request.reference, "token": request.token,
        "service_code": request.service_code, "status": request.status,
        "status_notes": request.status_notes,
        "public_status_notes": request.public_status_notes, "description": request.description,
        "source": request.source, "phone": request.phone, "email": request.email,
        "first_name": request.first_name, "last_name": request.last_name,
        "address": request.address, "address_id": request.address_id,
        "zipcode": request.zipcode, "lat": request.lat, "long": request.long,
        "media_url": request.media_url, "attributes": request.attributes or {},
        "agency_responsible": request.agency_responsible,
        "service_notice": request.service_notice, "language": request.language,
        "message_id": request.message_id, "requested_at": iso(request.requested_at),
        "updated_at": iso(request.updated_at), "expected_at": iso(request.expected_at),
    }
    if changes is not None:
        body["history"] = [{"status": c.status, "status_notes": c.status_notes,
                            "changed_by": c.changed_by, "changed_at": iso(c.changed_at)}
                           for c in changes]
    return body


def in_window(session: Session, tenant_id: str, *, start: dt.datetime, end: dt.datetime,
              service_codes: list[str] | None, statuses: list[str] | None,
              limit: int) -> list[ServiceRequest]:
    """Requests made in [start, end], newest first, at most ``limit``."""
    q = sa.select(ServiceRequest).where(
        ServiceRequest.tenant_id == tenant_id, ServiceRequest.requested_at >= start,
        ServiceRequest.requested_at <= end)
    if service_codes:
        q = q.where(ServiceRequest.service_code.in_(service_codes))
    if statuses:
        q = q.where(ServiceRequest.status.in_(statuses))
    return list(session.scalars(q.order_by(ServiceRequest.requested_at.desc(),
                                           ServiceRequest.id).limit(limit)))


def by_references(session: Session, tenant_id: str, references: list[str]) -> list[ServiceRequest]:
    return list(session.scalars(sa.select(ServiceRequest).where(
        ServiceRequest.tenant_id == tenant_id,
        ServiceRequest.reference.in_([r.upper() for r in references]))
        .order_by(ServiceRequest.requested_at.desc())))

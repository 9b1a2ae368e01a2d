"""One v2 API send in as few statements as it can take (docs/benchmarks.md, "The API path").

:func:`sending.accept` reads the template (every column), then the recipient's opt-out,
then flushes an ORM object: three statements and a unit of work.  Here one statement
answers both questions (the template's current version, and whether the recipient
opted out), the template's text comes from the process's :class:`TemplateCache` when it
is that version, and the row goes in with one Core ``INSERT``.  What is not the common
case (an opted-out recipient, a tenant whose quiet hours hold API sends) goes through
:func:`sending.store` as before, so suppression and deferral keep one implementation.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify import quiet_hours, sending
from services.notify.models import Notification, Suppression, Template
from services.notify.templates import TemplateCache
from shared import logs, pii
from shared.errors import ValidationError
from shared.tenancy import Tenant

_COLUMNS = frozenset(c.key for c in Notification.__table__.columns)


def accept_send(session: Session, tenant: Tenant, req: sending.SendRequest,
                templates: TemplateCache, correlation_id: str | None,
                now: dt.datetime) -> Notification:
    """Validate, render and store one API send (as :func:`sending.accept` does); the
    same 400s, in the same order: template first, then the recipient and the rest."""
    try:
        recipient = sending.normalise_recipient(req.channel, req.recipient)
    except ValidationError:
        recipient = None          # build() raises it, after the template's own errors
    version, suppressed = session.execute(sa.select(
        sa.select(Template.version).where(
            Template.id == req.template_id, Template.tenant_id == tenant.id,
            Template.archived.is_(False)).scalar_subquery(),
        sa.exists().where(
            Suppression.tenant_id == tenant.id, Suppression.channel == req.channel,
            Suppression.recipient_hash == pii.lookup_hash(session, recipient)),
    )).one()
    if version is None:
        raise sending.BadRequest("Template not found")
    template = templates.get(req.template_id, tenant.id, version)
    if template is None:
        template = templates.put(session.get(Template, req.template_id))
    if template.type != req.channel:
        raise sending.BadRequest(f"{req.channel} template is not suitable for {template.type} "
                                 "notification")
    n = sending.build(tenant, template, req, now)
    if suppressed or quiet_hours.holds(tenant, key_type=n.key_type,
                                       transactional=req.transactional):
        sending.store(session, tenant, [n], {n.recipient} if suppressed else set(),
                      correlation_id, now, transactional=req.transactional)
        session.flush()
        return n
    # the request's journey, carried by the dispatcher into its events and log lines
    n.correlation_id = n.correlation_id or correlation_id or logs.correlation_id.get()
    session.execute(sa.insert(Notification.__table__),
                    [{k: v for k, v in vars(n).items() if k in _COLUMNS}])
    return n

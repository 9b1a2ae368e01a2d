"""Event handlers of the notify service: small functions, dependencies as parameters.

The map from event type to handlers is in :func:`routes`; the composition root
(``wiring.py``) binds it to queues.
"""
from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify import opendata
from services.notify.models import Notification, ReceivedText, Suppression, Template
from services.notify.sending import (
    SendRequest,
    accept,
    build,
    find_suppression,
    new_suppression,
    store,
    suppressed_among,
)
from shared import pii
from shared.bus import PermanentError
from shared.db import utcnow
from shared.errors import ValidationError
from shared.events import Event
from shared.inbox import Route, Routes
from shared.tenancy import Tenant


def _request(event: Event) -> SendRequest:
    d = event.data
    return SendRequest(
        channel=d["channel"], template_id=str(d["template_id"]), recipient=d["recipient"],
        personalisation=d.get("personalisation") or {}, reference=d.get("reference"),
        language=d.get("language"), key_type="live", notification_id=str(d["notification_id"]),
        urgent=d.get("urgent", False),
        campaign_id=str(d["campaign_id"]) if d.get("campaign_id") else None,
        occurrence_key=d.get("occurrence_key"),
        appointment_id=str(d["appointment_id"]) if d.get("appointment_id") else None,
        appointment_reference=d.get("appointment_reference"), reply_code=d.get("reply_code"),
        not_before=d.get("not_before"), sender=d.get("sender"))


def on_notification_requested(event: Event, session: Session) -> None:
    """Store a notification asked for by the scheduler or inbound; the dispatcher sends it."""
    nid = str(event.data["notification_id"])
    if session.get(Notification, nid) is not None:
        return   # asked for before (a replayed occurrence): nothing is sent twice
    tenant = session.get(Tenant, str(event.tenant_id))
    if tenant is None:
        raise PermanentError(f"unknown tenant {event.tenant_id}")
    try:
        accept(session, tenant, _request(event), correlation_id=event.correlation_id)
    except ValidationError as exc:
        raise PermanentError(exc.message) from exc


def on_notifications_requested(events: list[Event], session: Session) -> None:
    """The batch form: one query for ids already stored, templates and opt-outs per tenant,
    one multi-row INSERT.  Any invalid request fails the batch, and the worker then
    handles its events one by one, so only that one is dead-lettered."""
    now = utcnow()
    ids = [str(e.data["notification_id"]) for e in events]
    traces = {str(e.data["notification_id"]): e.traceparent for e in events if e.traceparent}
    known = set(session.scalars(sa.select(Notification.id).where(Notification.id.in_(ids))))
    groups: dict[tuple, list[SendRequest]] = {}
    for event in events:
        req = _request(event)
        if req.notification_id in known:
            continue
        known.add(req.notification_id)
        groups.setdefault((str(event.tenant_id), req.channel, event.correlation_id), []).append(req)
    for (tenant_id, channel, cid), reqs in groups.items():
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise PermanentError(f"unknown tenant {tenant_id}")
        templates = {t.id: t for t in session.scalars(sa.select(Template).where(
            Template.tenant_id == tenant_id, Template.id.in_({r.template_id for r in reqs}),
            Template.archived.is_(False)))}
        built = []
        for req in reqs:
            template = templates.get(req.template_id)
            if template is None or template.type != channel:
                raise PermanentError("Template not found or not for this channel")
            try:
                built.append(build(tenant, template, req, now))
            except ValidationError as exc:
                raise PermanentError(exc.message) from exc
            # one transaction for the batch, so no span per event: the row keeps the
            # trace its event came with (shared/tracing.py)
            built[-1].traceparent = traces.get(built[-1].id) or built[-1].traceparent
        store(session, tenant, built,
              suppressed_among(session, tenant_id, channel, {n.recipient for n in built}), cid, now)
    session.flush()



def on_opted_out(event: Event, session: Session) -> None:
    key = (str(event.tenant_id), event.data.get("channel", "sms"), event.data["recipient"])
    if find_suppression(session, *key) is None:
        session.add(new_suppression(session, *key, source=event.data.get("source", "reply"),
                                    created_at=utcnow()))


def on_opted_in(event: Event, session: Session) -> None:
    session.execute(sa.delete(Suppression).where(
        Suppression.tenant_id == str(event.tenant_id),
        Suppression.channel == event.data.get("channel", "sms"),
        Suppression.recipient_hash == pii.lookup_hash(session, event.data["recipient"])))


def on_inbound_message(event: Event, session: Session) -> None:
    d = event.data
    if session.get(ReceivedText, str(d["message_id"])) is None:
        session.add(ReceivedText(id=str(d["message_id"]), tenant_id=str(event.tenant_id),
                                 user_number=d["from_number"], notify_number=d["to_number"],
                                 content=d["body"], created_at=d["received_at"]))


class _Callbacks:
    """The delivery-status callback handler: it only records the callbacks owed
    (``status_callbacks`` rows, in the inbox transaction); the sender POSTs them after
    commit (:class:`services.notify.status_callbacks.Sender`).  In a batch, tenants without
    a callback URL (most of a bin night) are skipped with one query for the lot."""

    def __init__(self, clock=utcnow):
        self.clock = clock

    def __call__(self, event: Event, session: Session) -> None:
        self.many([event], session)

    def many(self, events: list[Event], session: Session) -> None:
        from services.notify.status_callbacks import record

        record(events, session, now=self.clock())

    def relevant(self, events: list[Event], session: Session) -> set[str]:
        """The ids of the events that would cause a callback (the inbox claims only these)."""
        from services.notify.status_callbacks import tenants_with_callbacks

        wanted = tenants_with_callbacks(events, session)
        return {str(e.id) for e in events if str(e.tenant_id) in wanted}


def routes(clock=utcnow, nudge: Callable[[], None] | None = None,
           callbacks_recorded: Callable[[], None] | None = None) -> Routes:
    """{event type: [routes]} — one visible map for the whole service (the queues they
    are bound to: ``shared/topology.py``).

    ``clock`` stamps the delivery-status callbacks recorded (a test's fixed instant);
    ``nudge`` wakes the dispatcher once stored notifications are committed, and
    ``callbacks_recorded`` wakes the callbacks' sender once recorded callbacks are.
    """
    from services.notify.console.audit import apply_audit_event

    callback = _Callbacks(clock)
    callback_route = Route(callback, many=callback.many, relevant=callback.relevant,
                           after_commit=(lambda _items: callbacks_recorded())
                           if callbacks_recorded else None)
    # final outcomes only (the queue's binding): Notify calls back on delivered or failed
    outcomes = {t: [callback_route] for t in ("notification.delivered", "notification.failed")}
    requested = Route(on_notification_requested, many=on_notifications_requested,
                      after_commit=(lambda _items: nudge()) if nudge else None)
    return {
        **outcomes,
        "notification.requested": [requested],
        "subscriber.opted_out": [on_opted_out],
        "subscriber.opted_in": [on_opted_in],
        "inbound.message.received": [on_inbound_message, opendata.count_reply],
        "service_request.created": [opendata.count_service_request],
        "audit.recorded": [apply_audit_event],
    }

"""The ticker: finds due occurrences and asks notify for one notification per recipient.

Each step locks one occurrence (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
serialises writers anyway), writes the next batch of ``notification.requested``
events to the outbox, moves the occurrence's cursor past the last subscriber
and commits — all in one transaction.  So:

* two tickers never emit the same batch: the second skips the locked row, or
  takes it after the commit and reads the moved cursor;
* a ticker that dies mid-occurrence loses at most its uncommitted batch, and
  the next step (by any ticker) resumes after the cursor;
* every notification id is derived from (campaign, subscriber, occurrence),
  so even a replayed event reaches notify as a notification it already has.

Steps take occurrences round-robin, one batch each, so one council's 100,000
reminders do not hold back another's appointment reminder due now.

Before emitting, a tick plans what recurring campaigns will need next
(:func:`planner.plan`, at most every ``plan_interval``), and a non-urgent SMS
occurrence found inside the tenant's quiet hours is moved to the next window
(or skipped, if that is past the grace window), with the reason recorded.
Each request carries ``not_before``: the occurrence's planned start plus its
position times the spacing the tenant's capacity allows, so notify spreads a
large occurrence over its window instead of taking it all at once.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.scheduler import audience, campaigns, planner
from services.scheduler.models import (
    HELD,
    UNFINISHED,
    Appointment,
    Campaign,
    Occurrence,
    Subscriber,
)
from shared import events, outbox
from shared.db import Database, utcnow
from shared.metrics import METRICS
from shared.tenancy import Tenant

log = logging.getLogger(__name__)

# Fixed for ever: changing it would give every past notification a new id.
NOTIFICATION_NAMESPACE = uuid.UUID("5d6f0c2e-8a4b-5b1e-9c3d-2f7a1e4b6c80")
# An occurrence found later than this after its due time (the ticker was down)
# is not sent: a bin reminder after the lorry has gone helps nobody.  It is
# completed with the audience counted as skipped.
DEFAULT_GRACE = dt.timedelta(hours=6)
DEFAULT_PLAN_INTERVAL = dt.timedelta(minutes=1)
DUE_PAGE = 100


def notification_id(campaign_id: str, subscriber_id: str, occurrence_key: str) -> str:
    """The one notification id a (campaign, subscriber, occurrence) can ever have."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE,
                          f"{campaign_id}:{subscriber_id}:{occurrence_key}"))


class Ticker:
    """Emits due occurrences in batches; safe to run as many instances as you like."""

    def __init__(self, db: Database, batch: int = 1000, interval: float = 1.0, *,
                 on_outbox: Callable[[], None] | None = None,
                 grace: dt.timedelta = DEFAULT_GRACE,
                 plan_interval: dt.timedelta = DEFAULT_PLAN_INTERVAL,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.db = db
        self.batch = batch
        self.interval = interval
        self.on_outbox = on_outbox or (lambda: None)
        self.grace = grace
        self.plan_interval = plan_interval
        self.clock = clock
        self.nudge = threading.Event()
        self._planned_at: dt.datetime | None = None

    def run_once(self, now: dt.datetime | None = None) -> int:
        """Plan ahead, then emit everything due at ``now``; returns how many were requested."""
        now = now or self.clock()
        self.plan_ahead(now)
        emitted = 0
        failed: set[str] = set()
        while True:
            progressed = False
            for occurrence_id in self._due(now):
                if occurrence_id in failed:
                    continue
                try:
                    step = self._step(occurrence_id, now)
                except Exception:
                    # one bad occurrence must not hold up every other tenant's
                    log.exception("occurrence %s failed; it is retried on the next tick",
                                  occurrence_id)
                    failed.add(occurrence_id)
                    continue
                if step is not None:
                    progressed = True
                    emitted += step
            if not progressed:
                return emitted

    def plan_ahead(self, now: dt.datetime, force: bool = False) -> int:
        """Plan the next occurrences of recurring campaigns whose horizon runs out."""
        if not force and self._planned_at is not None and \
                abs(now - self._planned_at) < self.plan_interval:
            return 0
        self._planned_at = now
        with self.db.read() as session:
            ids = planner.campaigns_to_plan(session, now)
        added = 0
        for campaign_id in ids:
            try:
                with self.db.transaction() as session:
                    query = sa.select(Campaign).where(Campaign.id == campaign_id)
                    if self.db.dialect == "postgresql":
                        query = query.with_for_update(skip_locked=True)
                    campaign = session.scalars(query).first()
                    if campaign is not None:
                        added += planner.plan(session, campaign,
                                              session.get(Tenant, campaign.tenant_id), now)
            except Exception:
                log.exception("planning campaign %s failed; retried on the next tick",
                              campaign_id)
        return added

    def lag_seconds(self, now: dt.datetime | None = None) -> float:
        """now minus the due time of the oldest unfinished occurrence that may send (0 if none).

        A paused campaign or an inactive tenant is held on purpose, so it is not lag.
        """
        now = now or self.clock()
        with self.db.read() as session:
            oldest = session.scalar(self._runnable(now).with_only_columns(
                sa.func.min(Occurrence.due_at)))
        if oldest is None:
            return 0.0
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        return max(0.0, (now - oldest).total_seconds())

    def run_forever(self, stop: threading.Event) -> None:
        """Tick every ``interval`` seconds (sooner when nudged) until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                # the ticker must outlive database outages, as the relay does
                log.exception("ticker run failed; retrying")
            try:
                METRICS.scheduler_lag.set(self.lag_seconds())
            except Exception:  # noqa: BLE001 - a metric must not stop the ticker
                log.warning("could not read scheduler lag")
            self.nudge.wait(self.interval)
            self.nudge.clear()

    # -- one step: one batch of one occurrence, one transaction ------------------
    def _due(self, now: dt.datetime) -> list[str]:
        # A snapshot without locks; each occurrence is locked (or skipped) by its step.
        with self.db.read() as session:
            return list(session.scalars(self._runnable(now).with_only_columns(Occurrence.id)
                                        .order_by(Occurrence.due_at).limit(DUE_PAGE)))

    def _runnable(self, now: dt.datetime) -> sa.Select:
        return (sa.select(Occurrence)
                .join(Campaign, Campaign.id == Occurrence.campaign_id)
                .join(Tenant, Tenant.id == Occurrence.tenant_id)
                .where(Occurrence.status.in_(UNFINISHED), Occurrence.due_at <= now,
                       Campaign.status.not_in(HELD), Tenant.active.is_(True)))

    def _claim(self, session: Session, occurrence_id: str, now: dt.datetime) -> Occurrence | None:
        query = self._runnable(now).where(Occurrence.id == occurrence_id)
        if self.db.dialect == "postgresql":
            query = query.with_for_update(of=Occurrence, skip_locked=True)
        return session.scalars(query).first()

    def _step(self, occurrence_id: str, now: dt.datetime) -> int | None:
        """Emit the next batch; None if another ticker holds it or it is no longer due."""
        with self.db.transaction() as session:
            occ = self._claim(session, occurrence_id, now)
            if occ is None:
                return None
            campaign = session.get(Campaign, occ.campaign_id)
            if occ.status == "pending" and now - occ.due_at > self.grace:
                self._skip(session, occ, campaign, f"found {now - occ.due_at} after its due "
                           f"time, past the {self.grace} grace window")
                emitted = 0
            elif occ.status == "pending" and self._quiet_move(session, occ, campaign, now):
                emitted = 0
            elif occ.appointment_id:
                emitted = self._emit_appointment(session, occ, campaign)
            else:
                emitted = self._emit_batch(session, occ, campaign)
        self.on_outbox()
        return emitted

    def _quiet_move(self, session: Session, occ: Occurrence, campaign: Campaign,
                    now: dt.datetime) -> bool:
        """Move (or skip) a non-urgent SMS occurrence found inside quiet hours; True if so."""
        if campaign.urgent or campaign.channel != "sms":
            return False
        quiet = planner.quiet_hours(session.get(Tenant, occ.tenant_id))
        if quiet is None or not quiet.contains(now):
            return False
        later = quiet.next_end(now)
        if later - occ.due_at > self.grace:
            self._skip(session, occ, campaign, f"due in quiet hours {quiet.label()}; the next "
                       f"window ({later.isoformat()}) is past the grace window")
        else:
            occ.nominal_at = occ.nominal_at or occ.due_at
            occ.note = f"quiet hours {quiet.label()}: moved from {occ.due_at.isoformat()}"
            shift = later - occ.due_at
            occ.due_at = later
            occ.send_from = (occ.send_from or later) + shift
            occ.updated_at = utcnow()
        return True

    def _emit_batch(self, session: Session, occ: Occurrence, campaign: Campaign) -> int:
        occ.status = "emitting"
        query = audience.eligible(campaign.tenant_id, campaign.channel, campaign.audience or {},
                                  occ.audience or {})
        if occ.cursor:
            query = query.where(Subscriber.id > occ.cursor)
        subscribers = session.scalars(query.limit(self.batch)).all()
        # one notification.requested per batch of recipients (DESIGN.md, "Events")
        items = [self._requested(campaign, occ, s, occ.requested + n).data
                 for n, s in enumerate(subscribers)]
        outbox.add_many(session, events.batches("notification.requested", occ.tenant_id, items,
                                                correlation_id=str(occ.id)))
        if subscribers:
            occ.cursor = subscribers[-1].id
            occ.requested += len(subscribers)
        occ.updated_at = utcnow()
        if len(subscribers) < self.batch:
            self._complete(session, occ, campaign)
        return len(subscribers)

    def _not_before(self, occ: Occurrence, position: int) -> dt.datetime | None:
        if occ.send_from is None:
            return None
        return occ.send_from + dt.timedelta(seconds=position * (occ.spacing or 0.0))

    def _requested(self, campaign: Campaign, occ: Occurrence, s: Subscriber,
                   position: int = 0) -> events.Event:
        key = occ.occurrence_key
        return events.make(
            "notification.requested", occ.tenant_id, occ.id,
            notification_id=notification_id(campaign.id, s.id, key),
            template_id=campaign.template_id, channel=campaign.channel,
            recipient=s.phone if campaign.channel == "sms" else s.email,
            language=s.language,
            # the subscriber's own values win over the campaign's ("((name))" is
            # theirs); the occurrence's facts (which bins, which day) win over both
            personalisation={**(campaign.personalisation or {}), **(s.attributes or {}),
                             **(occ.personalisation or {})},
            reference=f"{campaign.id}:{key}", urgent=campaign.urgent,
            campaign_id=campaign.id, occurrence_key=key, sender=campaign.sender,
            not_before=self._not_before(occ, position))

    def _emit_appointment(self, session: Session, occ: Occurrence, campaign: Campaign) -> int:
        """An appointment reminder: one request, to the appointment's own recipient."""
        appt = session.get(Appointment, occ.appointment_id)
        recipient = None if appt is None else (appt.phone if campaign.channel == "sms"
                                               else appt.email)
        sent = 0
        if appt is not None and appt.status != "cancelled" and recipient:
            key = occ.occurrence_key
            outbox.add(session, events.make(
                "notification.requested", occ.tenant_id, occ.id,
                notification_id=notification_id(campaign.id, appt.id, key),
                template_id=campaign.template_id, channel=campaign.channel,
                recipient=recipient, language=appt.language,
                personalisation={**(campaign.personalisation or {}),
                                 **(occ.personalisation or {})},
                reference=f"{campaign.id}:{appt.external_reference}", urgent=campaign.urgent,
                campaign_id=campaign.id, occurrence_key=key, appointment_id=appt.id,
                appointment_reference=appt.external_reference, reply_code=appt.reply_code,
                sender=campaign.sender))
            sent = 1
        occ.requested += sent
        occ.skipped += 1 - sent
        occ.cursor = occ.appointment_id
        self._complete(session, occ, campaign)
        return sent

    def _skip(self, session: Session, occ: Occurrence, campaign: Campaign, why: str) -> None:
        occ.skipped = 1 if occ.appointment_id else audience.size(
            session, campaign.tenant_id, campaign.channel, campaign.audience or {},
            occ.audience or {})
        occ.note = why[:300]
        log.warning("occurrence %s (due %s) skipped, %d recipients: %s",
                    occ.id, occ.due_at.isoformat(), occ.skipped, why)
        self._complete(session, occ, campaign)

    def _complete(self, session: Session, occ: Occurrence, campaign: Campaign) -> None:
        occ.status = "completed"
        occ.completed_at = utcnow()
        occ.updated_at = occ.completed_at
        outbox.add(session, events.make(
            "campaign.occurrence.completed", occ.tenant_id, occ.id, campaign_id=campaign.id,
            occurrence_key=occ.occurrence_key, requested=occ.requested, skipped=occ.skipped))
        session.flush()
        # A broadcast plans all its occurrences up front, so none left means done;
        # recurring kinds plan ahead as time passes and stay scheduled.
        if campaign.kind == "broadcast" and campaign.status == "scheduled" \
                and not campaigns.has_unfinished(session, campaign.id):
            campaign.status = "completed"
            campaign.updated_at = occ.completed_at

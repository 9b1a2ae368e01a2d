"""Appointments: today's and the coming fortnight's, each with its reminders and replies.

The appointments and their reminders are the scheduler's (``GET /api/appointments``,
``GET /api/appointments/{reference}``); the messages sent for an appointment and the
patient's replies are notify's own (its notifications and received texts), so the page
shows what was actually sent and said, not only what was planned.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import render_template, request
from flask_babel import lazy_gettext as _l

from services.notify.console import Area, db, now, requires, tenant_id
from services.notify.console.clients import clients, guard
from services.notify.console.i18n import today_in_london
from services.notify.models import Notification, ReceivedText

bp = Area("appointments", __name__, "/appointments",
          nav=(_l("Appointments"), "index", "view", 55))
guard(bp)

AHEAD_DAYS = 14


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def by_day(appointments: list[dict], today: dt.date) -> tuple[list[dict], list[dict]]:
    """(today's, later ones), each sorted by time; a cancelled one is kept (and shown so)."""
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    todays, later = [], []
    for a in appointments:
        a["starts"] = _when(a.get("starts_at"))
        if a["starts"] is None:
            continue
        day = a["starts"].astimezone(london).date()
        if day == today:
            todays.append(a)
        elif day > today:
            later.append(a)
    from operator import itemgetter

    key = itemgetter("starts")
    return sorted(todays, key=key), sorted(later, key=key)


@bp.get("/")
@requires("view")
def index():
    today = today_in_london(now())
    status = request.args.get("status") or None
    listed = clients().scheduler.appointments(
        starts_from=today.isoformat(),
        starts_to=(today + dt.timedelta(days=AHEAD_DAYS)).isoformat(), page_size=1000,
        status=status if status in ("booked", "confirmed", "rearrange_requested",
                                    "cancelled") else None)
    todays, later = by_day(listed.get("appointments") or [], today)
    return render_template("console/appointments/index.html", todays=todays, later=later,
                           today=today, status=status)


@bp.get("/<path:reference>")
@requires("view")
def detail(reference: str):
    a = clients().scheduler.appointment(reference)
    a["starts"] = _when(a.get("starts_at"))
    for r in a.get("reminders") or []:
        r["due"] = _when(r.get("due_at"))
    with db().read() as s:
        sent = list(s.scalars(sa.select(Notification).where(
            Notification.tenant_id == tenant_id(), Notification.appointment_id == a["id"])
            .order_by(Notification.created_at)))
        since = min([n.created_at for n in sent], default=None)
        replies = [] if not a.get("phone") or since is None else [
            {"at": r.created_at, "text": r.content} for r in s.scalars(
                sa.select(ReceivedText).where(ReceivedText.tenant_id == tenant_id(),
                                              ReceivedText.user_number == a["phone"],
                                              ReceivedText.created_at >= since)
                .order_by(ReceivedText.created_at))]
        messages = [{"at": n.created_at, "status": n.status, "text": n.body} for n in sent]
    return render_template("console/appointments/detail.html", a=a, messages=messages,
                           replies=replies)

"""Who was sent what: notify's own notifications, searched by recipient, campaign and day,
the delivery rate per day, and the rows of the CSV export.

These read notify's own tables (the console is part of notify).  Days are Europe/London
days.  Message bodies are never listed or exported: "what" is the template and its
version (the body is the tenant's citizens' personal data, encrypted at rest).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification, ReceivedText, Suppression, Template
from services.notify.sending import normalise_recipient
from shared import pii
from shared.errors import ValidationError

LONDON = ZoneInfo("Europe/London")
PAGE = 50
FAILED = ("permanent-failure", "temporary-failure", "technical-failure")
EXPORT_LIMIT = 100_000
REPLY_WINDOW = dt.timedelta(days=7)


@dataclass(frozen=True)
class Search:
    recipient: str | None = None
    campaign_id: str | None = None
    first: dt.date | None = None
    last: dt.date | None = None
    status: str | None = None


def day_bounds(first: dt.date | None, last: dt.date | None
               ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start of ``first``, start of the day after ``last``) in Europe/London, as UTC."""
    lo = dt.datetime.combine(first, dt.time(), LONDON).astimezone(dt.UTC) if first else None
    hi = (dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), LONDON).astimezone(dt.UTC)
          if last else None)
    return lo, hi


def recipient_of(raw: str) -> str | None:
    """A typed number or address as stored (E.164 / lower case), or None if it is neither."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return normalise_recipient("email" if "@" in raw else "sms", raw)
    except ValidationError:
        return None


def _where(session: Session, tenant_id: str, s: Search) -> list:
    where = [Notification.tenant_id == tenant_id]
    if s.recipient:
        where.append(Notification.recipient_hash == pii.lookup_hash(session, s.recipient))
    if s.campaign_id:
        where.append(Notification.campaign_id == s.campaign_id)
    lo, hi = day_bounds(s.first, s.last)
    if lo is not None:
        where.append(Notification.created_at >= lo)
    if hi is not None:
        where.append(Notification.created_at < hi)
    if s.status == "failed":
        where.append(Notification.status.in_(FAILED))
    elif s.status:
        where.append(Notification.status == s.status)
    return where


def search(session: Session, tenant_id: str, s: Search, *, offset: int = 0,
           size: int = PAGE) -> tuple[list[dict], int]:
    """A page of matching notifications, newest first, and how many match in all."""
    where = _where(session, tenant_id, s)
    total = session.scalar(sa.select(sa.func.count()).select_from(Notification).where(*where))
    rows = session.execute(
        sa.select(Notification, Template.name).outerjoin(
            Template, sa.and_(Template.id == Notification.template_id,
                              Template.tenant_id == Notification.tenant_id))
        .where(*where).order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset(offset).limit(size)).all()
    return [_row(n, name) for n, name in rows], int(total or 0)


def _row(n: Notification, template_name: str | None) -> dict:
    return {"id": n.id, "created_at": n.created_at, "channel": n.channel,
            "recipient": n.recipient, "template": template_name or n.template_id,
            "template_version": n.template_version, "campaign_id": n.campaign_id,
            "occurrence_key": n.occurrence_key, "language": n.language, "status": n.status,
            "status_reason": n.status_reason, "sent_at": n.sent_at,
            "completed_at": n.completed_at, "fragments": n.fragment_count}


EXPORT_COLUMNS = ("created_at", "channel", "recipient", "template", "template_version",
                  "campaign_id", "occurrence_key", "language", "status", "status_reason",
                  "sent_at", "completed_at", "fragments")


def export_csv(session: Session, tenant_id: str, s: Search, header: list[str]) -> Iterator[str]:
    """The search as CSV text, a chunk at a time (at most EXPORT_LIMIT rows, newest first).
    ``header``: the column titles in the page's language."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(header)
    yield _drain(buf)
    done = 0
    while done < EXPORT_LIMIT:
        rows, _ = search(session, tenant_id, s, offset=done, size=1000)
        if not rows:
            return
        for row in rows:
            out.writerow([cell(row[c]) for c in EXPORT_COLUMNS])
        done += len(rows)
        yield _drain(buf)
        if len(rows) < 1000:
            return


def _drain(buf: io.StringIO) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text


def cell(value) -> str:
    """One CSV cell, safe to open in a spreadsheet: dates in ISO 8601 UTC, and text that a
    spreadsheet would run as a formula (``=``, ``@``, or ``+``/``-`` not before a digit)
    quoted with a leading apostrophe.  A phone number (+44…) stays a number."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value)
    if text[:1] in ("=", "@", "\t", "\r") or (
            text[:1] in ("+", "-") and not text[1:2].isdigit()):
        return "'" + text
    return text


def delivery_by_day(session: Session, tenant_id: str, first: dt.date, last: dt.date,
                    campaign_id: str | None = None) -> list[dict]:
    """Per Europe/London day in [first, last]: messages finished (delivered or failed),
    delivered, and the delivery rate in percent (None on a day with none)."""
    lo, hi = day_bounds(first, last)
    where = [Notification.tenant_id == tenant_id, Notification.created_at >= lo,
             Notification.created_at < hi,
             Notification.status.in_(("delivered", *FAILED))]
    if campaign_id:
        where.append(Notification.campaign_id == campaign_id)
    counts: dict[dt.date, list[int]] = {}
    # counted per row in Python: the day boundary is London's, which SQLite cannot compute
    for created, status in session.execute(sa.select(Notification.created_at,
                                                     Notification.status).where(*where)):
        day = created.astimezone(LONDON).date()
        slot = counts.setdefault(day, [0, 0])
        slot[0] += 1
        slot[1] += status == "delivered"
    out = []
    day = first
    while day <= last:
        finished, delivered = counts.get(day, [0, 0])
        out.append({"date": day, "finished": finished, "delivered": delivered,
                    "rate": round(100 * delivered / finished, 1) if finished else None})
        day += dt.timedelta(days=1)
    return out


def replies_and_opt_outs(session: Session, tenant_id: str, campaign_id: str
                         ) -> dict[str, dict[str, int]]:
    """Per occurrence of a campaign: recipients who replied, and who opted out, within
    REPLY_WINDOW of their message (from notify's own received texts and suppression list;
    personal data ages out with the tenant's retention, so older occurrences count only
    what is still kept)."""
    sent = session.execute(sa.select(Notification.occurrence_key, Notification.recipient,
                                     Notification.created_at).where(
        Notification.tenant_id == tenant_id, Notification.campaign_id == campaign_id,
        Notification.channel == "sms")).all()
    if not sent:
        return {}
    numbers = sorted({r for _, r, _ in sent if r})
    replies: dict[str, list[dt.datetime]] = {}
    stops: dict[str, dt.datetime] = {}
    # Numbers are encrypted at rest: received texts are read by time (the window the
    # campaign's replies can fall in) and matched here; suppressions by keyed hash.
    wanted = set(numbers)
    first = min(at for _, _, at in sent)
    last = max(at for _, _, at in sent) + REPLY_WINDOW
    for number, at in session.execute(sa.select(ReceivedText.user_number,
                                                ReceivedText.created_at).where(
            ReceivedText.tenant_id == tenant_id, ReceivedText.created_at >= first,
            ReceivedText.created_at < last)):
        if number in wanted:
            replies.setdefault(number, []).append(at)
    by_hash = {pii.lookup_hash(session, n): n for n in numbers}
    hashes = sorted(by_hash)
    for chunk in (hashes[i:i + 500] for i in range(0, len(hashes), 500)):
        for hashed, at in session.execute(sa.select(Suppression.recipient_hash,
                                                    Suppression.created_at).where(
                Suppression.tenant_id == tenant_id, Suppression.channel == "sms",
                Suppression.recipient_hash.in_(chunk))):
            stops[by_hash[hashed]] = at
    out: dict[str, dict[str, int]] = {}
    for key, number, at in sent:
        slot = out.setdefault(key or "", {"replies": 0, "opt_outs": 0})
        if any(at <= r < at + REPLY_WINDOW for r in replies.get(number, [])):
            slot["replies"] += 1
        if number in stops and at <= stops[number] < at + REPLY_WINDOW:
            slot["opt_outs"] += 1
    return out

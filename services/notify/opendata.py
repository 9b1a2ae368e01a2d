"""Open data: each tenant's non-personal daily figures, kept after the personal data goes.

GDS and the Digital First service standard ask a public service to publish how
it performs.  For each tenant and Europe/London day this keeps: notifications
requested, sent (handed to a provider), delivered, failed and suppressed; the
delivered rate; opt-outs; replies, and how many were answered without a person
(a recognised keyword got an automatic answer); and service requests made by
reply.  Nothing in it identifies anyone.

The notification, opt-out and reply counts are rolled up from the rows
(:func:`roll_up`, run by the retention loop before each purge), recomputed
until the day's rows are purged — so late delivery receipts still count —
and then sealed (``final``).  Automatic answers and service requests come
from events (:func:`count_reply`, :func:`count_service_request`), because
notify keeps no keyword or request of its own.

Public, no authentication: ``GET /open-data/daily.json`` and ``/open-data/daily.csv``
(``tenant`` slug, ``from`` and ``to`` dates, inclusive; by default the last 31
complete days).
"""
from __future__ import annotations

import csv
import datetime as dt
import io

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.notify.models import Base, Notification, ReceivedText, Suppression
from shared import retention
from shared.db import Database, UTCDateTime, insert_for, utcnow
from shared.errors import ApiError, ValidationError
from shared.events import Event
from shared.tenancy import Tenant

SENT = ("sent", "delivered", "permanent-failure", "temporary-failure")
FAILED = ("permanent-failure", "temporary-failure", "technical-failure")
ROLLED_UP = ("requested", "sent", "delivered", "failed", "suppressed", "opt_outs", "replies")
# A reply that matched no keyword (or asked a question) waits for a person.
NEEDS_A_PERSON = (None, "question")
MAX_DAYS = 366
DEFAULT_DAYS = 31
LICENCE = "Open Government Licence v3.0"
COLUMNS = ("date", "tenant", "requested", "sent", "delivered", "delivered_rate", "failed",
           "suppressed", "opt_outs", "replies", "replies_answered_automatically",
           "share_answered_automatically", "service_requests", "final")


class DailyFigures(Base):
    """One tenant's figures for one Europe/London day."""

    __tablename__ = "daily_figures"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    requested: Mapped[int] = mapped_column(sa.Integer, default=0)
    sent: Mapped[int] = mapped_column(sa.Integer, default=0)
    delivered: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    suppressed: Mapped[int] = mapped_column(sa.Integer, default=0)
    opt_outs: Mapped[int] = mapped_column(sa.Integer, default=0)
    replies: Mapped[int] = mapped_column(sa.Integer, default=0)
    replies_automated: Mapped[int] = mapped_column(sa.Integer, default=0)
    service_requests: Mapped[int] = mapped_column(sa.Integer, default=0)
    # set once the day's personal rows are purged: the figures can no longer change
    final: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- rolling up --------------------------------------------------------------------

def roll_up(db: Database, *, now: dt.datetime | None = None) -> int:
    """Recompute every unsealed complete day of every tenant; seal the days about to be purged.

    Answers the number of (tenant, day) rows written.  Idempotent, and cheap to
    run often: each day is three indexed counts per tenant.
    """
    now = now or utcnow()
    today = retention.local_day(now)
    written = 0
    with db.read() as session:
        tenants = [(t.id, retention.retention_days(t)) for t in session.scalars(sa.select(Tenant))]
    for tenant_id, days in tenants:
        seal_before = retention.first_kept_day(now, days)
        with db.read() as session:
            start = _first_open_day(session, tenant_id)
        if start is None:
            continue
        day = start
        while day < today:
            with db.transaction() as session:
                written += _write_day(session, tenant_id, day, final=day < seal_before)
            day += dt.timedelta(days=1)
    return written


def _first_open_day(session: Session, tenant_id: str) -> dt.date | None:
    """The first day that may still need figures: after the last sealed one, at the oldest row."""
    sealed = session.scalar(sa.select(sa.func.max(DailyFigures.day)).where(
        DailyFigures.tenant_id == tenant_id, DailyFigures.final.is_(True)))
    oldest = [session.scalar(sa.select(sa.func.min(m.created_at)).where(m.tenant_id == tenant_id))
              for m in (Notification, ReceivedText, Suppression)]
    oldest = [retention.local_day(o if o.tzinfo else o.replace(tzinfo=dt.UTC))
              for o in oldest if o is not None]
    if not oldest:
        return None
    start = min(oldest)
    if sealed is not None:
        start = max(start, sealed + dt.timedelta(days=1))
    return start


def _write_day(session: Session, tenant_id: str, day: dt.date, *, final: bool) -> int:
    existing = session.get(DailyFigures, (tenant_id, day))
    if existing is not None and existing.final:
        return 0
    figures = day_figures(session, tenant_id, day)
    if existing is None and not any(figures.values()):
        return 0
    if existing is None:
        existing = DailyFigures(tenant_id=tenant_id, day=day, replies_automated=0,
                                service_requests=0)
        session.add(existing)
    for name, value in figures.items():
        setattr(existing, name, value)
    existing.final = final
    existing.updated_at = utcnow()
    return 1


def day_figures(session: Session, tenant_id: str, day: dt.date) -> dict[str, int]:
    """The rolled-up counts for one tenant and day, from the rows still held."""
    start, end = retention.day_bounds(day)
    by_status = dict(session.execute(
        sa.select(Notification.status, sa.func.count())
        .where(Notification.tenant_id == tenant_id, Notification.created_at >= start,
               Notification.created_at < end, Notification.key_type != "test")
        .group_by(Notification.status)).all())

    def count(model) -> int:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(
            model.tenant_id == tenant_id, model.created_at >= start, model.created_at < end)) or 0

    return {
        "requested": sum(by_status.values()),
        "sent": sum(by_status.get(s, 0) for s in SENT),
        "delivered": by_status.get("delivered", 0),
        "failed": sum(by_status.get(s, 0) for s in FAILED),
        "suppressed": by_status.get("suppressed", 0),
        "opt_outs": count(Suppression),
        "replies": count(ReceivedText),
    }


# -- counted from events -----------------------------------------------------------

def _increment(session: Session, tenant_id: str, moment: dt.datetime, column: str) -> None:
    day = retention.local_day(moment)
    row = session.get(DailyFigures, (tenant_id, day))
    if row is None:
        session.execute(insert_for(session, DailyFigures.__table__).values(
            tenant_id=tenant_id, day=day, final=False, updated_at=utcnow(),
            **{c: 0 for c in (*ROLLED_UP, "replies_automated", "service_requests")}
        ).on_conflict_do_nothing())
        session.flush()
        row = session.get(DailyFigures, (tenant_id, day))
    setattr(row, column, getattr(row, column) + 1)


def count_reply(event: Event, session: Session) -> None:
    """``inbound.message.received``: count a reply answered without a person."""
    if event.data.get("keyword") not in NEEDS_A_PERSON:
        _increment(session, str(event.tenant_id), event.data["received_at"], "replies_automated")


def count_service_request(event: Event, session: Session) -> None:
    """``service_request.created``: count a service request made by reply."""
    _increment(session, str(event.tenant_id), event.occurred_at, "service_requests")


# -- publishing --------------------------------------------------------------------

def rows(session: Session, *, slug: str | None, first: dt.date, last: dt.date) -> list[dict]:
    """The published rows, oldest first, as plain values (no ids)."""
    q = (sa.select(DailyFigures, Tenant.slug).join(Tenant, Tenant.id == DailyFigures.tenant_id)
         .where(DailyFigures.day >= first, DailyFigures.day <= last)
         .order_by(DailyFigures.day, Tenant.slug))
    if slug is not None:
        q = q.where(Tenant.slug == slug)
    return [_row(f, tenant_slug) for f, tenant_slug in session.execute(q).all()]


def _row(f: DailyFigures, slug: str) -> dict:
    return {"date": f.day.isoformat(), "tenant": slug, "requested": f.requested, "sent": f.sent,
            "delivered": f.delivered, "delivered_rate": _share(f.delivered, f.sent),
            "failed": f.failed, "suppressed": f.suppressed, "opt_outs": f.opt_outs,
            "replies": f.replies, "replies_answered_automatically": f.replies_automated,
            "share_answered_automatically": _share(f.replies_automated, f.replies),
            "service_requests": f.service_requests, "final": f.final}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _date_arg(name: str, default: dt.date) -> dt.date:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"{name} must be a date in the form YYYY-MM-DD, got {raw!r}") from exc


def _query(db: Database) -> tuple[str | None, dt.date, dt.date]:
    yesterday = retention.local_day(utcnow()) - dt.timedelta(days=1)
    last = _date_arg("to", yesterday)
    first = _date_arg("from", last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise ValidationError("from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise ValidationError(f"from and to may be at most {MAX_DAYS} days apart")
    slug = request.args.get("tenant") or None
    if slug is not None:
        with db.read() as session:
            if session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is None:
                raise ApiError(f"tenant {slug!r} not found", 404, "NoResultFound")
    return slug, first, last


def blueprint(db: Database) -> Blueprint:
    """``/open-data/daily.json`` and ``/open-data/daily.csv``: public, non-personal."""
    blp = Blueprint("open_data", __name__, url_prefix="/open-data")

    def fetch() -> tuple[list[dict], dt.date, dt.date]:
        slug, first, last = _query(db)
        with db.read() as session:
            return rows(session, slug=slug, first=first, last=last), first, last

    @blp.get("/daily.json")
    def daily_json():
        data, first, last = fetch()
        resp = jsonify({"licence": LICENCE, "from": first.isoformat(), "to": last.isoformat(),
                        "timezone": "Europe/London", "columns": list(COLUMNS), "data": data})
        return _public(resp)

    @blp.get("/daily.csv")
    def daily_csv():
        data, first, last = fetch()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for row in data:
            writer.writerow({k: "" if v is None else str(v).lower() if isinstance(v, bool) else v
                             for k, v in row.items()})
        resp = Response(out.getvalue(), content_type="text/csv; charset=utf-8")
        resp.headers["Content-Disposition"] = (
            f'attachment; filename="hysbys-daily-{first.isoformat()}-{last.isoformat()}.csv"')
        return _public(resp)

    return blp


def _public(resp: Response) -> Response:
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp

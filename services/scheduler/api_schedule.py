"""Where calendars come in: collection rounds (``/api/rounds``) and a health board's
appointments (``/api/appointments``, known by the board's own reference)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import RAISE, fields
from sqlalchemy.exc import IntegrityError

from services.scheduler import appointments, rounds, schemas
from services.scheduler.models import Appointment, Round
from services.scheduler.paging import links, page
from services.scheduler.recurrence import local_date
from shared.db import utcnow
from shared.errors import AuthError, Conflict
from shared.http import authenticated, json_body
from shared.runtime import Runtime
from shared.schemas import Strict, load
from shared.tenancy import Tenant


class _Changes(Strict):
    changes = fields.List(fields.Nested(schemas.RoundChange), required=True)


def require_live_key(runtime: Runtime) -> None:
    """Campaigns and appointment reminders text real citizens: a ``test`` key (which must
    never leave the platform) or a ``team`` key (only the team's own numbers) may look and
    preview, but not set them up."""
    caller = authenticated(runtime)
    if caller.key_type != "live":
        raise AuthError("Campaigns and appointment reminders text real citizens: set them "
                        f"up with a live API key, not a {caller.key_type} key", 403)


def blueprint(runtime: Runtime, nudge_ticker: Callable[[], None],
              clock: Callable[[], dt.datetime] = utcnow) -> Blueprint:
    """The rounds and appointments routes; ``clock`` is "now" for them (the service's clock:
    a test gives a fixed instant)."""
    blp = Blueprint("calendars", __name__, url_prefix="/api",
                    description="Collection rounds and appointments")

    @blp.route("/rounds", methods=["POST"])
    @blp.arguments(schemas.RoundIn)
    @blp.alt_response(201, schema=schemas.RoundOut, success=True)
    @blp.alt_response(200, schema=schemas.RoundOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def put_round(args):
        """Set up a collection round (or replace the one with this code): an RFC 5545 rule
        in Europe/London, exception dates and moved collections"""
        caller = authenticated(runtime)
        now = clock()
        try:
            with runtime.db.transaction() as session:
                r, created = rounds.upsert(session, caller.tenant_id, args, now)
                body = rounds.as_json(r, local_date(now))
        except IntegrityError:
            raise Conflict(f"round {args['code']} was set up by another request at the same "
                           "time: send it again") from None
        return body, 201 if created else 200

    @blp.route("/rounds", methods=["GET"])
    @blp.arguments(schemas.RoundQuery, location="query")
    @blp.alt_response(200, schema=schemas.RoundList, success=True)
    @blp.doc(security=[{"bearer": []}])
    def list_rounds(args):
        """The tenant's rounds, by code, with their next collection dates (with ``until``,
        every date up to that day: the console's eight-week calendar)"""
        caller = authenticated(runtime)
        today = local_date(clock())
        with runtime.db.read() as session:
            found = session.scalars(sa.select(Round).where(
                Round.tenant_id == caller.tenant_id).order_by(Round.code)).all()
            return {"rounds": [rounds.as_json(r, today, args.get("until")) for r in found]}

    @blp.route("/rounds/<code>", methods=["GET"])
    @blp.arguments(schemas.RoundQuery, location="query")
    @blp.alt_response(200, schema=schemas.RoundOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def get_round(args, code: str):
        """One round and its next collection dates (``until``: every date up to that day)"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            return rounds.as_json(rounds.find(session, caller.tenant_id, code),
                                  local_date(clock()), args.get("until"))

    @blp.route("/rounds/<code>", methods=["PATCH"])
    @blp.alt_response(200, schema=schemas.RoundOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def patch_round(code: str):
        """Change a round; reminders not yet sent are planned again"""
        caller = authenticated(runtime)
        args = load(schemas.RoundIn(partial=True, exclude=("code",)), json_body())
        now = clock()
        with runtime.db.transaction() as session:
            r = rounds.find(session, caller.tenant_id, code)
            rounds.change(session, r, args, now)
            return rounds.as_json(r, local_date(now))

    @blp.route("/rounds/changes", methods=["POST"])
    @blp.arguments(_Changes)
    @blp.alt_response(200, schema=schemas.RoundChangesOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def load_changes(args):
        """Load a holiday calendar: ``{"changes": [{"from", "to", "rounds"?}]}`` moves every
        collection due ``from`` to ``to`` (``null``: no collection) in the rounds collecting
        that day"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            return rounds.apply_changes(session, caller.tenant_id, args["changes"], clock())

    @blp.route("/appointments", methods=["POST"])
    @blp.arguments(schemas.AppointmentIn)
    @blp.alt_response(201, schema=schemas.AppointmentOut, success=True)
    @blp.alt_response(200, schema=schemas.AppointmentOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def book(args):
        """Book an appointment (a known ``external_reference`` updates it: idempotent)"""
        require_live_key(runtime)
        caller = authenticated(runtime)
        try:
            with runtime.db.transaction() as session:
                tenant = session.get(Tenant, caller.tenant_id)
                appt, created = appointments.upsert(session, tenant, args, clock())
                body = appointments.detail(session, appt)
        except IntegrityError:
            raise Conflict("this external_reference was booked by another request at the same "
                           "time: send it again") from None
        nudge_ticker()
        return body, 201 if created else 200

    @blp.route("/appointments", methods=["GET"])
    @blp.arguments(schemas.AppointmentFilters, location="query", unknown=RAISE)
    @blp.alt_response(200, schema=schemas.AppointmentList, success=True)
    @blp.doc(security=[{"bearer": []}])
    def list_appointments(args):
        """Appointments newest first, ``page_size`` a page (250); ``links.next`` carries
        ``older_than``.  Filters: ``status`` (comma list), ``starts_from``/``starts_to``
        (days, Europe/London, included), ``reference`` (the board's)"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            rows = page(session, appointments.listed(caller.tenant_id, args), Appointment,
                        args, args["page_size"])
        return {"appointments": [appointments.summary(a) for a in rows],
                "links": links(".list_appointments", rows, args["page_size"])}

    @blp.route("/appointments/<path:reference>", methods=["GET"])
    @blp.alt_response(200, schema=schemas.AppointmentOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def get_appointment(reference: str):
        """An appointment, its reply code and its reminders"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            return appointments.detail(session, appointments.find(session, caller.tenant_id,
                                                                  reference))

    @blp.route("/appointments/<path:reference>", methods=["PATCH"])
    @blp.arguments(schemas.AppointmentPatch)
    @blp.alt_response(200, schema=schemas.AppointmentOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def change_appointment(args, reference: str):
        """Change an appointment: a new time moves its pending reminders"""
        require_live_key(runtime)
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            appt = appointments.find(session, caller.tenant_id, reference)
            appointments.change(session, session.get(Tenant, caller.tenant_id), appt, args,
                                clock())
            body = appointments.detail(session, appt)
        nudge_ticker()
        return body

    @blp.route("/appointments/<path:reference>", methods=["DELETE"])
    @blp.alt_response(200, schema=schemas.AppointmentOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def cancel_appointment(reference: str):
        """Cancel an appointment and its pending reminders (idempotent)"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            appt = appointments.find(session, caller.tenant_id, reference)
            appointments.cancel(session, appt, "board", clock())
            return appointments.detail(session, appt)

    return blp

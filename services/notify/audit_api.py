"""``GET /api/audit``: the tenant's audit log, newest first, paged as Notify pages.

The same entries as the console's Audit log page (``console/audit.py`` writes them):
who (staff member, API key, platform operator), what, when, before and after, with
secrets, recipients and message text redacted.  ``older_than`` (an entry id) gives
the next page; ``links.next`` carries it.
"""
from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from services.notify.api_v2 import guard
from services.notify.console import audit
from shared.db import utcnow
from shared.http import authenticated
from shared.runtime import Runtime


class AuditQuery(Schema):
    older_than = fields.Integer(validate=validate.Range(min=1, max=2**53),
                                metadata={"description": "Entries older than this id"})
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=250))


class AuditActor(Schema):
    type = fields.String(metadata={"description": "staff, api_key, operator or system"})
    id = fields.String(allow_none=True)
    label = fields.String(allow_none=True)


class AuditTarget(Schema):
    type = fields.String(allow_none=True)
    id = fields.String(allow_none=True)


class AuditEntrySchema(Schema):
    id = fields.Integer()
    at = fields.String()
    service = fields.String()
    via = fields.String(metadata={"description": "console, api, admin or event"})
    actor = fields.Nested(AuditActor)
    action = fields.String()
    target = fields.Nested(AuditTarget)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    correlation_id = fields.String(allow_none=True)


class AuditLinks(Schema):
    current = fields.String()
    next = fields.String(allow_none=True)


class AuditPage(Schema):
    entries = fields.List(fields.Nested(AuditEntrySchema))
    links = fields.Nested(AuditLinks)


def blueprint(runtime: Runtime, api_limits) -> Blueprint:
    """``api_limits``: the process's counters (services.notify.limits.ApiLimits)."""
    blp = Blueprint("audit", __name__, url_prefix="/api",
                    description="The tenant's audit log: every change by console or API")
    blp.before_request(lambda: guard(runtime, utcnow, api_limits))

    @blp.route("/audit", methods=["GET"])
    @blp.arguments(AuditQuery, location="query")
    @blp.response(200, AuditPage)
    @blp.doc(security=[{"bearer": []}])
    def list_entries(args):
        """Who changed what and when, newest first (secrets and message text redacted)"""
        caller = authenticated(runtime)
        size = args["page_size"]
        with runtime.db.read() as session:
            rows = audit.page(session, caller.tenant_id, older_than=args.get("older_than"),
                              size=size + 1)
        more, rows = len(rows) > size, rows[:size]
        current = url_for("audit.list_entries", _external=True, **{
            k: v for k, v in args.items() if k == "older_than" or v != 50})
        return {"entries": [audit.entry_json(e) for e in rows],
                "links": {"current": current,
                          "next": url_for("audit.list_entries", _external=True,
                                          older_than=rows[-1].id, page_size=size)
                          if more and rows else None}}

    return blp

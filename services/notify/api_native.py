"""The native API: what GOV.UK Notify lacks (bilingual templates, suppression list, bulk)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import g, request, url_for
from flask_smorest import Blueprint
from marshmallow import RAISE

from services.notify import bulk, schemas, suppressions
from services.notify.api_v2 import guard, uuid_or_400
from services.notify.models import BulkJob, Suppression, Template
from services.notify.sending import normalise_recipient
from services.notify.templates import (
    MissingPersonalisation,
    create_template,
    render_all,
    snapshot,
)
from shared import smstext
from shared.db import utcnow
from shared.errors import ApiError, NotFound, ValidationError
from shared.http import authenticated, iso
from shared.runtime import Runtime

SECURITY = [{"bearer": []}]


def template_json(t: Template) -> dict:
    sms = None
    if t.type == "sms":
        sms = {lang: smstext.analyse(smstext.normalise(body)).as_dict()
               for lang, body in (("cy", t.body_cy), ("en", t.body_en),
                                  ("cy+en", t.body_cy + "\n\n" + t.body_en))}
    return {"id": t.id, "name": t.name, "type": t.type, "version": t.version,
            "body": {"en": t.body_en, "cy": t.body_cy},
            "subject": {"en": t.subject_en, "cy": t.subject_cy} if t.type == "email" else None,
            "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
            "archived": t.archived, "sms": sms}


def _check_sms_length(kind: str, body: dict) -> None:
    for lang in ("en", "cy"):
        if kind == "sms" and smstext.too_long(smstext.normalise(body[lang])):
            raise ValidationError(f"body.{lang} is longer than {smstext.MAX_CHARACTERS} "
                                  "characters")


def blueprint(runtime: Runtime, nudge, api_limits) -> Blueprint:
    """``api_limits``: the process's counters (services.notify.limits.ApiLimits)."""
    blp = Blueprint("native", __name__, url_prefix="/api",
                    description="Hysbys native API: bilingual templates, suppression list, bulk")
    blp.before_request(lambda: guard(runtime, utcnow, api_limits))
    nudge = nudge or (lambda: None)

    def find(session, tenant_id: str, template_id: str) -> Template:
        tid = uuid_or_400(template_id, "template_id")
        t = session.scalars(sa.select(Template).where(
            Template.id == tid, Template.tenant_id == tenant_id)).first()
        if t is None:
            raise NotFound()
        return t

    @blp.route("/templates", methods=["POST"])
    @blp.arguments(schemas.TemplateCreate)
    @blp.response(201, schemas.TemplateResponse)
    @blp.doc(security=SECURITY)
    def create(args):
        """Create a bilingual SMS or email template"""
        caller = authenticated(runtime)
        _check_sms_length(args["type"], args["body"])
        with runtime.db.transaction() as session:
            t = create_template(session, caller.tenant_id, args, caller.key_id)
        return template_json(t)

    @blp.route("/templates", methods=["GET"])
    @blp.response(200, schemas.TemplateResponse(many=True))
    @blp.doc(security=SECURITY)
    def list_all():
        """The tenant's templates"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            rows = session.scalars(sa.select(Template).where(
                Template.tenant_id == caller.tenant_id).order_by(Template.name, Template.id)).all()
        return [template_json(t) for t in rows]

    @blp.route("/templates/<template_id>", methods=["GET"])
    @blp.response(200, schemas.TemplateResponse)
    @blp.doc(security=SECURITY)
    def get_one(template_id: str):
        """One template, with the cost of each language as a text message"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            return template_json(find(session, caller.tenant_id, template_id))

    @blp.route("/templates/<template_id>", methods=["PATCH"])
    @blp.arguments(schemas.TemplateUpdate)
    @blp.response(200, schemas.TemplateResponse)
    @blp.doc(security=SECURITY)
    def update(args, template_id: str):
        """Change a template: a new version; sent notifications keep theirs"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            t = find(session, caller.tenant_id, template_id)
            if "body" in args:
                _check_sms_length(t.type, args["body"])
            before = (t.name, t.body_en, t.body_cy, t.subject_en, t.subject_cy)
            t.name = args.get("name", t.name)
            if "body" in args:
                t.body_en, t.body_cy = args["body"]["en"], args["body"]["cy"]
            if args.get("subject") and t.type == "email":
                t.subject_en = args["subject"].get("en") or t.subject_en
                t.subject_cy = args["subject"].get("cy") or t.subject_cy
            if "archived" in args:
                t.archived = args["archived"]
            if (t.name, t.body_en, t.body_cy, t.subject_en, t.subject_cy) != before:
                t.version += 1
                session.add(snapshot(t))
            t.updated_at = utcnow()
        return template_json(t)

    @blp.route("/templates/<template_id>/preview", methods=["POST"])
    @blp.arguments(schemas.NativePreviewRequest)
    @blp.response(200, schemas.NativePreviewResponse)
    @blp.doc(security=SECURITY)
    def preview(args, template_id: str):
        """What a Welsh, an English and an unknown-language recipient would get, and its cost"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            t = find(session, caller.tenant_id, template_id)
        try:
            rendered = render_all(t.type, {"en": t.body_en, "cy": t.body_cy},
                                  {"en": t.subject_en, "cy": t.subject_cy},
                                  args.get("personalisation") or {})
        except MissingPersonalisation as exc:
            raise ApiError(str(exc), 400, "BadRequestError") from exc
        languages = {}
        for lang, r in rendered.items():
            languages[lang] = {"body": r.body, "subject": r.subject, **(
                r.sms.as_dict() if r.sms else {})}
        return {"id": t.id, "type": t.type, "version": t.version, "languages": languages}

    register_suppressions(blp, runtime)
    register_bulk(blp, runtime, nudge)
    return blp


def register_suppressions(blp: Blueprint, runtime: Runtime) -> None:
    """``/api/suppressions``: the tenant's opt-out list, as the team sees and edits it."""

    @blp.route("/suppressions", methods=["POST"])
    @blp.arguments(schemas.SuppressionRequest)
    @blp.response(201, schemas.SuppressionResponse)
    @blp.doc(security=SECURITY)
    def suppress(args):
        """Stop sending to a recipient (as if they had replied STOP)"""
        caller = authenticated(runtime)
        recipient = normalise_recipient(args["channel"], args["recipient"])
        with runtime.db.transaction() as session:
            row = suppressions.suppress(session, caller.tenant_id, args["channel"], recipient,
                                        g.get("correlation_id"))
            body = suppression_json(row)
        runtime.relay.nudge.set()
        return body

    @blp.route("/suppressions", methods=["GET"])
    @blp.arguments(schemas.SuppressionFilters, location="query", unknown=RAISE)
    @blp.response(200, schemas.SuppressionList)
    @blp.doc(security=SECURITY)
    def list_suppressions(args):
        """Who has opted out, newest first, a page at a time"""
        caller = authenticated(runtime)
        where = [Suppression.tenant_id == caller.tenant_id]
        if args.get("channel"):
            where.append(Suppression.channel == args["channel"])
        page, size = args["page"], args["page_size"]
        with runtime.db.read() as session:
            total = session.scalar(sa.select(sa.func.count()).select_from(Suppression).where(*where))
            rows = session.scalars(sa.select(Suppression).where(*where).order_by(
                Suppression.created_at.desc(), Suppression.channel, Suppression.recipient_hash)
                .offset((page - 1) * size).limit(size)).all()
        links = {"current": request.url}
        query = {k: v for k, v in request.args.items() if k != "page"}
        if page * size < total:
            links["next"] = url_for(".list_suppressions", _external=True, page=page + 1, **query)
        if page > 1:
            links["prev"] = url_for(".list_suppressions", _external=True, page=page - 1, **query)
        return {"suppressions": [suppression_json(r) for r in rows], "total": total,
                "page": page, "page_size": size, "links": links}

    @blp.route("/suppressions/<channel>/<path:recipient>", methods=["DELETE"])
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def unsuppress(channel: str, recipient: str):
        """Send to a recipient again (as if they had replied START): publishes
        ``subscriber.opted_in``"""
        caller = authenticated(runtime)
        if channel not in ("sms", "email"):
            raise ValidationError("channel must be sms or email")
        address = normalise_recipient(channel, recipient)
        with runtime.db.transaction() as session:
            if not suppressions.unsuppress(session, caller.tenant_id, channel, address,
                                           g.get("correlation_id")):
                raise NotFound()
        runtime.relay.nudge.set()
        return ""


def suppression_json(s: Suppression) -> dict:
    return {"recipient": s.recipient, "channel": s.channel, "source": s.source,
            "created_at": iso(s.created_at), "suppressed": True}


def register_bulk(blp: Blueprint, runtime: Runtime, nudge) -> None:
    """``/api/bulk``: one template to many recipients from a CSV file or a JSON list."""

    @blp.route("/bulk", methods=["POST"])
    @blp.arguments(schemas.BulkQuery, location="query", unknown=RAISE)
    @blp.response(201, schemas.BulkJobResponse)
    @blp.doc(security=SECURITY, requestBody={"required": True, "content": {
        "application/json": {"schema": schemas.BulkJsonRequest},
        "text/csv": {"schema": {"type": "string", "description": (
            "A header row: phone_number or email_address, then one column per "
            "personalisation field (optional columns reference and language); "
            "template_id in the query string")}}}})
    def bulk_send(args):
        """Send one template to up to 100,000 rows; bad rows are reported, good rows sent"""
        caller = authenticated(runtime)
        # Raised for this endpoint only: a 100,000-row CSV is about 5 MB.
        request.max_content_length = bulk.MAX_BODY_BYTES
        template_id = str(args["template_id"]) if args.get("template_id") else None
        if request.mimetype in ("text/csv", "application/csv"):
            if template_id is None:
                raise ValidationError("template_id is a required property (in the query string)")
            channel, rows = bulk.csv_source(request.stream)
        elif request.is_json:
            found, rows = bulk.json_source(request.stream, template_id)
            template_id = uuid_or_400(str(found), "template_id")
            channel = _template_type(runtime, caller.tenant_id, template_id)
        else:
            raise ApiError("Content-Type must be text/csv or application/json", 415,
                           "UnsupportedMediaTypeError")
        upload = bulk.Upload(runtime.db, caller, template_id, channel,
                             correlation_id=g.get("correlation_id"), on_batch=nudge)
        upload.start()
        upload.run(rows)
        return _job(runtime, caller.tenant_id, upload.job_id), 201

    @blp.route("/bulk/<job_id>", methods=["GET"])
    @blp.response(200, schemas.BulkJobResponse)
    @blp.doc(security=SECURITY)
    def bulk_status(job_id: str):
        """A bulk send's progress and result: total, accepted, rejected and row errors"""
        caller = authenticated(runtime)
        return _job(runtime, caller.tenant_id, uuid_or_400(job_id, "job_id"))


def _template_type(runtime: Runtime, tenant_id: str, template_id: str) -> str:
    with runtime.db.read() as session:
        t = session.scalars(sa.select(Template).where(
            Template.id == template_id, Template.tenant_id == tenant_id)).first()
    if t is None:
        raise ApiError("Template not found", 400, "BadRequestError")
    return t.type


def _job(runtime: Runtime, tenant_id: str, job_id: str) -> dict:
    with runtime.db.read() as session:
        job = session.scalars(sa.select(BulkJob).where(
            BulkJob.id == job_id, BulkJob.tenant_id == tenant_id)).first()
        if job is None:
            raise NotFound()
        return bulk.job_json(job)

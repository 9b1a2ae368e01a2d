"""The native API: what GOV.UK Notify lacks (bilingual templates, suppression list)."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import g
from flask_smorest import Blueprint

from services.notify import schemas
from services.notify.models import Suppression, Template
from services.notify.sending import normalise_recipient
from services.notify.templates import create_template, snapshot
from shared import events, outbox, smstext
from shared.db import utcnow
from shared.errors import NotFound, ValidationError
from shared.http import authenticated, iso
from shared.runtime import Runtime


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


def blueprint(runtime: Runtime) -> Blueprint:
    blp = Blueprint("native", __name__, url_prefix="/api",
                    description="Hysbys native API: bilingual templates, suppression list")
    blp.before_request(lambda: authenticated(runtime) and None)

    def find(session, tenant_id: str, template_id: str) -> Template:
        try:
            tid = str(uuid.UUID(template_id))
        except ValueError:
            raise NotFound() from None
        t = session.scalars(sa.select(Template).where(
            Template.id == tid, Template.tenant_id == tenant_id)).first()
        if t is None:
            raise NotFound()
        return t

    @blp.route("/templates", methods=["POST"])
    @blp.arguments(schemas.TemplateCreate)
    @blp.response(201, schemas.TemplateResponse)
    @blp.doc(security=[{"bearer": []}])
    def create(args):
        """Create a bilingual SMS or email template"""
        caller = authenticated(runtime)
        for lang in ("en", "cy"):
            if args["type"] == "sms" and smstext.too_long(args["body"][lang]):
                raise ValidationError(f"body.{lang} is longer than {smstext.MAX_CHARACTERS} "
                                      "characters")
        with runtime.db.transaction() as session:
            t = create_template(session, caller.tenant_id, args, caller.key_id)
        return template_json(t)

    @blp.route("/templates", methods=["GET"])
    @blp.response(200, schemas.TemplateResponse(many=True))
    @blp.doc(security=[{"bearer": []}])
    def list_all():
        """The tenant's templates"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            rows = session.scalars(sa.select(Template).where(
                Template.tenant_id == caller.tenant_id).order_by(Template.name)).all()
        return [template_json(t) for t in rows]

    @blp.route("/templates/<template_id>", methods=["GET"])
    @blp.response(200, schemas.TemplateResponse)
    @blp.doc(security=[{"bearer": []}])
    def get_one(template_id: str):
        """One template, with the cost of each language as a text message"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            return template_json(find(session, caller.tenant_id, template_id))

    @blp.route("/templates/<template_id>", methods=["PATCH"])
    @blp.arguments(schemas.TemplateUpdate)
    @blp.response(200, schemas.TemplateResponse)
    @blp.doc(security=[{"bearer": []}])
    def update(args, template_id: str):
        """Change a template: a new version; sent notifications keep theirs"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            t = find(session, caller.tenant_id, template_id)
            if "name" in args:
                t.name = args["name"]
            if "body" in args:
                t.body_en, t.body_cy = args["body"]["en"], args["body"]["cy"]
            if args.get("subject"):
                t.subject_en = args["subject"].get("en") or t.subject_en
                t.subject_cy = args["subject"].get("cy") or t.subject_cy
            if "archived" in args:
                t.archived = args["archived"]
            if {"name", "body", "subject"} & set(args):
                t.version += 1
                session.add(snapshot(t))
            t.updated_at = utcnow()
        return template_json(t)

    @blp.route("/suppressions", methods=["POST"])
    @blp.arguments(schemas.SuppressionRequest)
    @blp.doc(security=[{"bearer": []}])
    def suppress(args):
        """Stop sending to a recipient (as if they had replied STOP)"""
        caller = authenticated(runtime)
        recipient = normalise_recipient(args["channel"], args["recipient"])
        with runtime.db.transaction() as session:
            if session.get(Suppression, (caller.tenant_id, args["channel"], recipient)) is None:
                session.add(Suppression(tenant_id=caller.tenant_id, channel=args["channel"],
                                        recipient=recipient, source="team",
                                        created_at=utcnow()))
                outbox.add(session, events.make("subscriber.opted_out", caller.tenant_id,
                                                g.get("correlation_id"), recipient=recipient,
                                                channel=args["channel"], source="team"))
        return {"recipient": recipient, "channel": args["channel"], "suppressed": True}, 201

    return blp

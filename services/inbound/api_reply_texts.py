"""``/api/reply-texts``: a tenant's wording of the auto-replies, in Welsh and English.

``GET`` shows the wording in force with a preview of each answer (encoding, the
letters that make it UCS-2, fragments); ``PUT`` replaces the tenant's own texts
(an answer left out goes back to the platform's wording); ``POST .../preview``
shows a proposed set without saving it.  See :mod:`services.inbound.reply_texts`.
"""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from services.inbound import reply_texts
from services.inbound.api import _caller
from shared.runtime import Runtime
from shared.schemas import Strict
from shared.tenancy import Tenant


class ReplyTextsPut(Strict):
    """The tenant's own texts by answer (``{"help": {"cy": ..., "en": ...}}``)."""

    texts = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True,
                        metadata={"description": "answer → {cy, en}; placeholders as "
                                                 "`placeholders` lists them, e.g. {phone}"})
    contact_phone = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=reply_texts.MAX_PHONE))


class Measured(Schema):
    text = fields.String()
    encoding = fields.String(metadata={"description": "GSM-7 or UCS-2"})
    characters = fields.Integer()
    fragment_count = fields.Integer()
    ucs2_welsh_letters = fields.List(fields.String(),
                                     metadata={"description": "Welsh letters that make it UCS-2"})
    ucs2_characters = fields.List(fields.String())


class ReplyTextsOut(Schema):
    texts = fields.Dict(keys=fields.String(), values=fields.Dict())
    customised = fields.List(fields.String())
    contact_phone = fields.String(allow_none=True)
    placeholders = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    preview = fields.Dict(keys=fields.String(), values=fields.Dict(
        keys=fields.String(), values=fields.Nested(Measured)),
        metadata={"description": "answer → cy / en / cy+en → what it costs"})


def blueprint(runtime: Runtime) -> Blueprint:
    blp = Blueprint("reply_texts", __name__, url_prefix="/api",
                    description="A tenant's wording of the auto-replies, with a preview")

    def tenant_name(session, tenant_id: str) -> str:
        tenant = session.get(Tenant, tenant_id)
        return tenant.name if tenant else ""

    @blp.route("/reply-texts", methods=["GET"])
    @blp.alt_response(200, schema=ReplyTextsOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def get_reply_texts():
        """The wording in force (the tenant's where set, the platform's elsewhere), previewed"""
        caller = _caller(runtime)
        with runtime.db.read() as session:
            return reply_texts.body(reply_texts.load(session, caller.tenant_id),
                                    tenant_name(session, caller.tenant_id))

    @blp.route("/reply-texts", methods=["PUT"])
    @blp.arguments(ReplyTextsPut)
    @blp.alt_response(200, schema=ReplyTextsOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def put_reply_texts(args):
        """Replace the tenant's texts, answer by answer, each in Welsh and English"""
        caller = _caller(runtime)
        wording = reply_texts.validate(args["texts"], args.get("contact_phone"))
        with runtime.db.transaction() as session:
            reply_texts.save(session, caller.tenant_id, wording)
            return reply_texts.body(wording, tenant_name(session, caller.tenant_id))

    @blp.route("/reply-texts/preview", methods=["POST"])
    @blp.arguments(ReplyTextsPut)
    @blp.alt_response(200, schema=ReplyTextsOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def preview_reply_texts(args):
        """What a proposed set would send, per language: text, encoding, fragments (not saved)"""
        caller = _caller(runtime)
        wording = reply_texts.validate(args["texts"], args.get("contact_phone"))
        with runtime.db.read() as session:
            return reply_texts.body(wording, tenant_name(session, caller.tenant_id))

    return blp

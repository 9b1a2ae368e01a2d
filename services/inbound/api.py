"""The tenant's own API on inbound, under ``/api``: keywords, service requests, languages,
conversations (the staff inbox) and service types.

Every call is a tenant's (a GOV.UK Notify-style JWT) and every query is scoped
by its tenant id: another tenant's request is a 404, exactly like one that
does not exist.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import url_for
from flask_smorest import Blueprint

from services.inbound import (
    autoreplies,
    catalogue,
    conversations,
    keywords,
    reply_texts,
    schemas,
    service_requests,
    vocabulary,
)
from services.inbound.models import LanguagePreference, ServiceRequest
from services.inbound.replies import language_preference
from shared import outbox, pii
from shared.errors import ApiError, ValidationError
from shared.http import authenticated, iso
from shared.runtime import Runtime
from shared.tenancy import Caller, Tenant

SCOPE = "inbound"


def _caller(runtime: Runtime) -> Caller:
    caller = authenticated(runtime)
    if not caller.allows(SCOPE):
        raise ApiError(f"This API key's scopes do not include {SCOPE}", 403, "AuthError")
    return caller


def keywords_body(own: dict) -> dict:
    return {"keywords": vocabulary.in_force(own), "customised": sorted(own),
            "fixed": vocabulary.fixed()}


def blueprint(runtime: Runtime) -> Blueprint:
    blp = Blueprint("inbound_api", __name__, url_prefix="/api",
                    description="A tenant's keywords, service requests and citizens' languages")

    @blp.route("/keywords", methods=["GET"])
    @blp.response(200, schemas.KeywordsOut)
    @blp.doc(security=[{"bearer": []}])
    def get_keywords():
        """The words replies are read with: the tenant's own where set, the defaults elsewhere"""
        caller = _caller(runtime)
        with runtime.db.read() as session:
            return keywords_body(vocabulary.configured(session, caller.tenant_id))

    @blp.route("/keywords", methods=["PUT"])
    @blp.arguments(schemas.KeywordsPut)
    @blp.response(200, schemas.KeywordsOut)
    @blp.doc(security=[{"bearer": []}])
    def put_keywords(args):
        """Replace the tenant's words, intent by intent (STOP and START cannot be redefined)"""
        caller = _caller(runtime)
        clean = vocabulary.validate(args["keywords"])
        with runtime.db.transaction() as session:
            # a reply word must not hide one of the tenant's service-type keywords
            clash = catalogue.clashes(catalogue.for_tenant(session, caller.tenant_id),
                                      keywords.vocabulary(clean))
            if clash:
                raise ValidationError(clash)
            vocabulary.save(session, caller.tenant_id, clean)
        return keywords_body(clean)

    @blp.route("/service-requests", methods=["GET"])
    @blp.arguments(schemas.ServiceRequestFilters, location="query")
    @blp.alt_response(200, schema=schemas.ServiceRequestList, success=True)
    @blp.doc(security=[{"bearer": []}])
    def list_requests(args):
        """Service requests newest first, 250 a page; ``links.next`` carries ``older_than``"""
        caller = _caller(runtime)
        q = sa.select(ServiceRequest).where(ServiceRequest.tenant_id == caller.tenant_id)
        for name in ("status", "service_code"):
            if args.get(name):
                q = q.where(getattr(ServiceRequest, name) == args[name])
        with runtime.db.read() as session:
            if args.get("older_than"):
                anchor = service_requests.find(session, caller.tenant_id, args["older_than"])
                q = q.where(sa.tuple_(ServiceRequest.requested_at, ServiceRequest.id)
                            < (anchor.requested_at, anchor.id))
            rows = list(session.scalars(q.order_by(ServiceRequest.requested_at.desc(),
                                                   ServiceRequest.id.desc())
                                        .limit(args["page_size"])))
        links = {}
        if len(rows) == args["page_size"]:
            links["next"] = url_for(".list_requests", older_than=rows[-1].reference,
                                    _external=True)
        return {"service_requests": [service_requests.as_json(r) for r in rows],
                "links": links}

    @blp.route("/service-requests/<ident>", methods=["GET"])
    @blp.alt_response(200, schema=schemas.ServiceRequestOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def get_request(ident: str):
        """One request (by ``HYS-…`` reference or id) with its status history"""
        caller = _caller(runtime)
        with runtime.db.read() as session:
            request = service_requests.find(session, caller.tenant_id, ident)
            return service_requests.as_json(request,
                                            service_requests.history(session, request.id))

    @blp.route("/service-requests/<ident>", methods=["PATCH"])
    @blp.arguments(schemas.ServiceRequestPatch)
    @blp.alt_response(200, schema=schemas.ServiceRequestOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def patch_request(args, ident: str):
        """Change a request's status and notes; the citizen who texted it is told"""
        caller = _caller(runtime)
        notify_citizen = args.pop("notify_citizen")
        with runtime.db.transaction() as session:
            request = service_requests.find(session, caller.tenant_id, ident)
            changed = service_requests.update(session, request, changed_by=f"key:{caller.key_id}",
                                              cid=_cid(), **args)
            if changed and notify_citizen:
                _tell_citizen(session, request)
            body = service_requests.as_json(request, service_requests.history(session,
                                                                              request.id))
        runtime.relay.nudge.set()
        return body

    @blp.route("/language-preferences", methods=["GET"])
    @blp.arguments(schemas.LanguageFilters, location="query")
    @blp.alt_response(200, schema=schemas.LanguagePreferenceList, success=True)
    @blp.doc(security=[{"bearer": []}])
    def language_preferences(args):
        """The languages citizens chose by text (CYMRAEG / ENGLISH), newest first"""
        caller = _caller(runtime)
        q = sa.select(LanguagePreference).where(LanguagePreference.tenant_id == caller.tenant_id)
        with runtime.db.read() as session:
            if args.get("phone"):
                q = q.where(LanguagePreference.phone_hash == pii.lookup_hash(session, args["phone"]))
            rows = session.scalars(q.order_by(LanguagePreference.updated_at.desc()).limit(1000))
            return {"language_preferences": [
                {"phone": r.phone, "language": r.language, "source": r.source,
                 "updated_at": iso(r.updated_at)} for r in rows]}

    _conversation_routes(blp, runtime)
    _service_type_routes(blp, runtime)
    return blp


def _conversation_routes(blp: Blueprint, runtime: Runtime) -> None:
    """The staff inbox: conversations per citizen, answered by SMS through notify."""

    @blp.route("/conversations", methods=["GET"])
    @blp.arguments(schemas.ConversationFilters, location="query")
    @blp.alt_response(200, schema=schemas.ConversationList, success=True)
    @blp.doc(security=[{"bearer": []}])
    def list_conversations(args):
        """Conversations, the most recent message first; ``links.next`` carries ``older_than``"""
        caller = _caller(runtime)
        with runtime.db.read() as session:
            tenant = session.get(Tenant, caller.tenant_id)
            threads = conversations.listing(session, caller.tenant_id, args)
            extra = conversations.summaries(session, threads)
            body = [conversations.as_json(t, conversations.answer_language(session, tenant, t),
                                          *extra[t.id]) for t in threads]
        links = {}
        if len(threads) == args["page_size"]:
            query = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                     for k, v in args.items() if k != "older_than"}
            links["next"] = url_for(".list_conversations", older_than=threads[-1].id,
                                    _external=True, **query)
        return {"conversations": body, "links": links}

    @blp.route("/conversations/<ident>", methods=["GET"])
    @blp.alt_response(200, schema=schemas.ConversationDetail, success=True)
    @blp.alt_response(404, description="No conversation of this tenant has that id (another "
                                        "tenant's is the same 404)")
    @blp.doc(security=[{"bearer": []}])
    def get_conversation(ident: str):
        """One conversation with its messages, newest first (at most 500)"""
        caller = _caller(runtime)
        with runtime.db.read() as session:
            return _conversation_body(session, caller.tenant_id, ident)

    @blp.route("/conversations/<ident>", methods=["PATCH"])
    @blp.arguments(schemas.ConversationPatch)
    @blp.alt_response(200, schema=schemas.ConversationDetail, success=True)
    @blp.alt_response(404, description="No conversation of this tenant has that id (another "
                                        "tenant's is the same 404)")
    @blp.doc(security=[{"bearer": []}])
    def patch_conversation(args, ident: str):
        """Assign (``assigned_to``, null to unassign), close or reopen (``status``)"""
        caller = _caller(runtime)
        if not args:
            raise ValidationError("give assigned_to or status")
        with runtime.db.transaction() as session:
            thread = conversations.find(session, caller.tenant_id, ident)
            conversations.change(thread, status=args.get("status"),
                                 assigned_to=args.get("assigned_to", ...))
        with runtime.db.read() as session:
            return _conversation_body(session, caller.tenant_id, ident)

    @blp.route("/conversations/<ident>/messages", methods=["POST"])
    @blp.arguments(schemas.AnswerIn)
    @blp.alt_response(201, schema=schemas.ConversationMessageOut, success=True)
    @blp.alt_response(404, description="No conversation of this tenant has that id (another "
                                        "tenant's is the same 404)")
    @blp.alt_response(409, description="The tenant has no reply template: nothing can be "
                                        "sent")
    @blp.doc(security=[{"bearer": []}])
    def answer_conversation(args, ident: str):
        """Answer the citizen by SMS, through notify, in the conversation's ``language``"""
        caller = _caller(runtime)
        with runtime.db.transaction() as session:
            tenant = session.get(Tenant, caller.tenant_id)
            thread = conversations.find(session, caller.tenant_id, ident)
            message = conversations.answer(
                session, tenant, thread, body=args.get("body"), body_cy=args.get("body_cy"),
                body_en=args.get("body_en"),
                author=args.get("author") or f"key:{caller.key_id}", cid=_cid())
        runtime.relay.nudge.set()
        return message, 201


def _conversation_body(session, tenant_id: str, ident: str) -> dict:
    thread = conversations.find(session, tenant_id, ident)
    tenant = session.get(Tenant, tenant_id)
    rows = conversations.messages(session, thread.id)
    count, last = conversations.summaries(session, [thread])[thread.id]
    body = conversations.as_json(thread, conversations.answer_language(session, tenant, thread),
                                 count, last)
    body["messages"] = [conversations.message_json(m) for m in rows]
    return body


def _service_type_routes(blp: Blueprint, runtime: Runtime) -> None:
    """The tenant's own service types: what requests are, what Open311 lists."""

    def body(session, tenant_id: str) -> dict:
        types = catalogue.for_tenant(session, tenant_id)
        return {"service_types": [t.as_json() for t in types.values()],
                "customised": catalogue.configured(session, tenant_id) is not None}

    @blp.route("/service-types", methods=["GET"])
    @blp.alt_response(200, schema=schemas.ServiceTypeList, success=True)
    @blp.doc(security=[{"bearer": []}])
    def get_service_types():
        """The tenant's service types (the platform's two until it sets its own)"""
        caller = _caller(runtime)
        with runtime.db.read() as session:
            return body(session, caller.tenant_id)

    @blp.route("/service-types", methods=["PUT"])
    @blp.arguments(schemas.ServiceTypesPut)
    @blp.alt_response(200, schema=schemas.ServiceTypeList, success=True)
    @blp.doc(security=[{"bearer": []}])
    def put_service_types(args):
        """Replace the tenant's service types (question always; missed_collection while
        the MISSED keywords are on); a keyword may belong to one type only"""
        caller = _caller(runtime)
        with runtime.db.transaction() as session:
            clean = catalogue.validate(args["service_types"],
                                       vocabulary.load(session, caller.tenant_id))
            catalogue.save(session, caller.tenant_id, clean)
        with runtime.db.read() as session:
            return body(session, caller.tenant_id)


def _tell_citizen(session, request: ServiceRequest) -> None:
    """Text the citizen whose reply made this request: "Your report HYS-… has been closed: …"."""
    if request.source != "sms" or not request.phone:
        return   # an Open311 client's user gave no consent to be texted by us
    tenant = session.get(Tenant, request.tenant_id)
    notes = f": {request.status_notes}" if request.status_notes else "."
    kind = "status_closed" if request.status == "closed" else "status_updated"
    texts = autoreplies.compose(kind, tenant.name, request.reference,
                                reply_texts.load(session, tenant.id), notes=notes)
    # the citizen's own choice by text, else the language their report was answered in
    language = autoreplies.choose_language(
        language_preference(session, tenant.id, request.phone), request.language, None)
    seq = service_requests.history(session, request.id)[-1].seq
    event = autoreplies.reply_requested(tenant, request.phone, texts, language,
                                        request.reference, key=f"{request.id}:{seq}",
                                        cid=_cid())
    if event is not None:
        outbox.add(session, event)
        conversations.record_status_update(session, tenant.id, request.phone, event,
                                           request.reference)


def _cid() -> str | None:
    from flask import g

    return g.get("correlation_id")

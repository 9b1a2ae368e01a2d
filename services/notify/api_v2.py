"""The GOV.UK Notify v2 API, as ``notifications-python-client`` calls it.

Field names, statuses, status codes, pagination and error bodies follow GOV.UK
Notify, so an integration written for Notify changes only its base URL.
"""
from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from flask import g, request, url_for
from flask_smorest import Blueprint
from marshmallow import RAISE

from services.notify import limits, schemas
from services.notify.models import Notification, ReceivedText, Template, TemplateVersion
from services.notify.send_path import accept_send
from services.notify.sending import SendRequest
from services.notify.templates import (
    BILINGUAL_SEPARATOR,
    SUBJECT_SEPARATOR,
    MissingPersonalisation,
    TemplateCache,
    join_bilingual,
    render_message,
    template_placeholders,
)
from shared.errors import ApiError, NotFound, ValidationError
from shared.http import authenticated, iso
from shared.runtime import Runtime
from shared.tenancy import Tenant

log = logging.getLogger(__name__)
PAGE_SIZE = 250
MAX_VERSION = 2**31 - 1   # an INTEGER column: a larger number is simply not a version
FAILED = ["permanent-failure", "temporary-failure", "technical-failure"]
SECURITY = [{"bearer": []}]


def guard(runtime: Runtime, clock, api_limits: limits.ApiLimits) -> None:
    """Before every tenant call: authenticate (401/403), count it against the key's
    per-minute limit (429), and refuse a body that is not JSON (415).

    A send is also counted against the tenant's daily limit here (429 before its
    template is looked at, the order GOV.UK Notify checks them in).  Neither count is
    in the request's transaction, and most take no database round trip at all
    (:class:`limits.ApiLimits`).  A send that then ends in anything but 201 hands its
    daily count back (:func:`settle`)."""
    now = clock()
    counters = api_limits
    caller = authenticated(runtime)
    tenant = caller.tenant
    counters.count_request(tenant_id=caller.tenant_id, key_id=caller.key_id,
                           key_type=caller.key_type,
                           per_minute=tenant.setting("rate_limit_per_minute"), now=now)
    if request.endpoint in SENDS and counters.take_daily(
            tenant_id=tenant.id, key_type=caller.key_type, count=1, now=now,
            per_day=tenant.setting("daily_message_limit")):
        g.daily_counted_at = now
        g.daily_counters = counters
    if request.endpoint not in JSON_OR_CSV:
        require_json_body()


def settle(runtime: Runtime, response):
    """After a send: hand back its daily count unless it was stored (201)."""
    counted_at = g.pop("daily_counted_at", None)
    counters = g.pop("daily_counters", None)
    if counted_at is not None and response.status_code != 201:
        counters.give_back_daily(tenant_id=g.caller.tenant_id, count=1, now=counted_at)
    return response


# endpoints that read their own body (CSV or JSON)
JSON_OR_CSV = {"native.bulk_send"}
# endpoints that send one message, counted against the daily limit by the guard
SENDS = {"v2.send_sms", "v2.send_email"}


def require_json_body() -> None:
    """A request with a body must say it is JSON (415 otherwise, before it is parsed)."""
    if request.method in ("POST", "PUT", "PATCH") and request.content_length \
            and not request.is_json:
        raise ApiError("Content-Type must be application/json", 415, "UnsupportedMediaTypeError")


def blueprint(runtime: Runtime, nudge, clock, api_limits: limits.ApiLimits,
              templates: TemplateCache | None = None) -> Blueprint:
    """``clock`` is the service's (tests inject one: quiet hours at 21:30 at any hour);
    ``api_limits`` and ``templates`` are the process's counters and template cache."""
    blp = Blueprint("v2", __name__, url_prefix="/v2",
                    description="GOV.UK Notify v2 compatible API")
    templates = templates or TemplateCache()
    # Authenticate before the body is parsed: a caller without a token gets 401, as on Notify.
    blp.before_request(lambda: guard(runtime, clock, api_limits))
    blp.after_request(lambda response: settle(runtime, response))

    def send(channel: str, args: dict, recipient_field: str):
        caller = authenticated(runtime)
        if args.get("scheduled_for"):
            # Notify's answer to a service without scheduling: never send early instead
            raise ApiError("Cannot schedule notifications (this feature is invite-only)", 400,
                           "BadRequestError")
        req = SendRequest(
            channel=channel, template_id=str(args["template_id"]),
            recipient=args[recipient_field], personalisation=args.get("personalisation") or {},
            reference=args.get("reference"), language=args.get("language"),
            key_id=caller.key_id, key_type=caller.key_type, urgent=args.get("urgent", False),
            transactional=True, sms_sender_id=_str(args.get("sms_sender_id")),
            email_reply_to_id=_str(args.get("email_reply_to_id")),
            unsubscribe_url=args.get("one_click_unsubscribe_url"),
            sanitise=tuple(args.get("sanitise_content_for") or ()))
        now = clock()
        tenant: Tenant = caller.tenant      # counted by the guard; settle() hands it back
        with runtime.db.transaction() as session:
            n = accept_send(session, tenant, req, templates, g.get("correlation_id"), now)
        nudge()
        body = {"id": n.id, "reference": n.reference, "uri": f"{_base()}/v2/notifications/{n.id}",
                "template": template_ref(n.template_id, n.template_version),
                "scheduled_for": None, "status": n.status}
        if channel == "sms":
            sender = n.sender or (tenant.setting("sender_ids") or [None])[0]
            body["content"] = {"body": n.body, "from_number": sender or "Hysbys",
                               "encoding": n.encoding, "fragment_count": n.fragment_count}
        else:
            body["content"] = {"body": n.body, "subject": n.subject or "",
                               "from_email": f"{tenant.slug}@hysbys.cymru",
                               "one_click_unsubscribe_url": n.unsubscribe_url}
        return body, 201

    @blp.route("/notifications/sms", methods=["POST"])
    @blp.arguments(schemas.SmsRequest)
    @blp.response(201, schemas.SmsResponse)
    @blp.doc(security=SECURITY)
    def send_sms(args):
        """Send a text message"""
        return send("sms", args, "phone_number")

    @blp.route("/notifications/email", methods=["POST"])
    @blp.arguments(schemas.EmailRequest)
    @blp.response(201, schemas.EmailResponse)
    @blp.doc(security=SECURITY)
    def send_email(args):
        """Send an email"""
        return send("email", args, "email_address")

    @blp.route("/notifications/letter", methods=["POST"])
    @blp.response(400, schemas.ErrorResponse)
    @blp.doc(security=SECURITY)
    def send_letter():
        """Letters are not sent by Hysbys: answered as Notify answers a service without them"""
        raise ApiError("Service is not allowed to send letters", 400, "BadRequestError")

    @blp.route("/notifications/<notification_id>", methods=["GET"])
    @blp.response(200, schemas.NotificationResponse)
    @blp.doc(security=SECURITY)
    def get_notification(notification_id: str):
        """Get a notification's status by its id"""
        caller = authenticated(runtime)
        nid = uuid_or_400(notification_id, "notification_id")
        with runtime.db.read() as session:
            n = session.scalars(sa.select(Notification).where(
                Notification.id == nid, Notification.tenant_id == caller.tenant_id)).first()
        if n is None:
            raise NotFound()
        return serialise(n)

    @blp.route("/notifications", methods=["GET"])
    @blp.arguments(schemas.NotificationFilters, location="query", unknown=RAISE)
    @blp.response(200, schemas.NotificationList)
    @blp.doc(security=SECURITY)
    def list_notifications(args):
        """Notifications newest first, 250 a page; ``links.next`` carries ``older_than``.

        As on Notify, a key sees the notifications sent with keys of its own type.
        """
        caller = authenticated(runtime)
        q = sa.select(Notification).where(Notification.tenant_id == caller.tenant_id,
                                          Notification.key_type == caller.key_type)
        if args.get("template_type"):
            q = q.where(Notification.channel.in_(args["template_type"]))
        statuses = _expand_statuses(args.get("status") or [])
        if statuses:
            q = q.where(Notification.status.in_(statuses))
        if args.get("reference"):
            q = q.where(Notification.reference == args["reference"])
        with runtime.db.read() as session:
            if args.get("older_than"):
                anchor = session.scalars(sa.select(Notification).where(
                    Notification.id == str(args["older_than"]),
                    Notification.tenant_id == caller.tenant_id)).first()
                if anchor is None:
                    return {"notifications": [], "links": {"current": request.url}}
                q = q.where(_older_than(Notification, anchor))
            rows = session.scalars(q.order_by(Notification.created_at.desc(),
                                              Notification.id.desc()).limit(PAGE_SIZE)).all()
        return {"notifications": [serialise(n) for n in rows],
                "links": _links(".list_notifications", rows)}

    @blp.route("/template/<template_id>", methods=["GET"])
    @blp.response(200, schemas.TemplateV2Response)
    @blp.doc(security=SECURITY)
    def get_template(template_id: str):
        """A template's latest version"""
        caller = authenticated(runtime)
        return template_body(find_template(runtime, caller.tenant_id, template_id))

    @blp.route("/template/<template_id>/version/<int:version>", methods=["GET"])
    @blp.response(200, schemas.TemplateV2Response)
    @blp.doc(security=SECURITY)
    def get_template_version(template_id: str, version: int):
        """One version of a template (a sent notification links to the one it used)"""
        caller = authenticated(runtime)
        t = find_template(runtime, caller.tenant_id, template_id)
        if not 1 <= version <= MAX_VERSION:
            raise NotFound()
        with runtime.db.read() as session:
            v = session.get(TemplateVersion, (t.id, version))
        if v is None:
            raise NotFound()
        return template_body(v, template_id=t.id, version=version, created_at=t.created_at,
                             updated_at=v.created_at if version > 1 else None)

    @blp.route("/templates", methods=["GET"])
    @blp.arguments(schemas.TemplateTypeFilter, location="query", unknown=RAISE)
    @blp.response(200, schemas.TemplateV2List)
    @blp.doc(security=SECURITY)
    def list_templates(args):
        """All the tenant's templates, optionally of one type"""
        caller = authenticated(runtime)
        q = sa.select(Template).where(Template.tenant_id == caller.tenant_id,
                                      Template.archived.is_(False))
        if args.get("type"):
            q = q.where(Template.type == args["type"])
        with runtime.db.read() as session:
            rows = session.scalars(q.order_by(Template.name, Template.id)).all()
        return {"templates": [template_body(t) for t in rows]}

    @blp.route("/template/<template_id>/preview", methods=["POST"])
    @blp.arguments(schemas.PreviewRequest)
    @blp.response(200, schemas.PreviewResponse)
    @blp.doc(security=SECURITY)
    def preview(args, template_id: str):
        """Render a template with personalisation; reports encoding and fragments"""
        caller = authenticated(runtime)
        t = find_template(runtime, caller.tenant_id, template_id)
        try:
            r = render_message(t.type, {"en": t.body_en, "cy": t.body_cy},
                               {"en": t.subject_en, "cy": t.subject_cy},
                               args.get("personalisation") or {}, args.get("language"))
        except MissingPersonalisation as exc:
            raise ApiError(str(exc), 400, "BadRequestError") from exc
        body = {"id": t.id, "type": t.type, "version": t.version, "body": r.body,
                "subject": r.subject, "html": None, "postage": None, "language": r.language}
        if r.sms:
            body.update(r.sms.as_dict())
        return body

    @blp.route("/received-text-messages", methods=["GET"])
    @blp.arguments(schemas.ReceivedTextFilters, location="query", unknown=RAISE)
    @blp.response(200, schemas.ReceivedTextList)
    @blp.doc(security=SECURITY)
    def received_texts(args):
        """Replies from citizens, newest first, 250 a page"""
        caller = authenticated(runtime)
        q = sa.select(ReceivedText).where(ReceivedText.tenant_id == caller.tenant_id)
        with runtime.db.read() as session:
            if args.get("older_than"):
                anchor = session.get(ReceivedText, str(args["older_than"]))
                if anchor is None or anchor.tenant_id != caller.tenant_id:
                    return {"received_text_messages": [], "links": {"current": request.url}}
                q = q.where(_older_than(ReceivedText, anchor))
            rows = session.scalars(q.order_by(ReceivedText.created_at.desc(),
                                              ReceivedText.id.desc()).limit(PAGE_SIZE)).all()
        return {"received_text_messages": [
            {"id": r.id, "created_at": iso(r.created_at), "service_id": r.tenant_id,
             "notify_number": r.notify_number, "user_number": r.user_number,
             "content": r.content} for r in rows], "links": _links(".received_texts", rows)}

    return blp


def _str(value) -> str | None:
    return None if value is None else str(value)


def _base() -> str:
    return request.host_url.rstrip("/")


def _older_than(model, anchor):
    return sa.or_(model.created_at < anchor.created_at,
                  sa.and_(model.created_at == anchor.created_at, model.id < anchor.id))


def _links(endpoint: str, rows: list) -> dict:
    """``current`` always; ``next`` whenever the page has rows, as on Notify (the client's
    iterators follow ``next`` until a page comes back empty)."""
    links = {"current": request.url}
    if rows:
        params = {k: request.args.getlist(k) for k in request.args if k != "older_than"}
        links["next"] = url_for(endpoint, _external=True, older_than=rows[-1].id, **params)
    return links


def uuid_or_400(value: str, name: str) -> str:
    """``value`` as a canonical UUID, or a 400 that names the parameter."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(f"{name} is not a valid UUID") from None


def find_template(runtime: Runtime, tenant_id: str, template_id: str) -> Template:
    """The tenant's template (archived ones too: old notifications link to them), or 404."""
    tid = uuid_or_400(template_id, "template_id")
    with runtime.db.read() as session:
        t = session.scalars(sa.select(Template).where(
            Template.id == tid, Template.tenant_id == tenant_id)).first()
    if t is None:
        raise NotFound()
    return t


def _expand_statuses(statuses: list[str]) -> list[str]:
    # Notify's alias: "failed" covers every failure.
    out: list[str] = []
    for s in statuses:
        out += FAILED if s == "failed" else [s]
    return out


def template_ref(template_id: str, version: int) -> dict:
    """``{"id", "version", "uri"}``: the uri answers with that version."""
    return {"id": template_id, "version": version,
            "uri": f"{_base()}/v2/template/{template_id}/version/{version}"}


def serialise(n: Notification) -> dict:
    """A notification as GOV.UK Notify's ``GET /v2/notifications/{id}`` shows it."""
    return {
        "id": n.id, "reference": n.reference,
        "email_address": n.recipient if n.channel == "email" else None,
        "phone_number": n.recipient if n.channel == "sms" else None,
        "line_1": None, "line_2": None, "line_3": None, "line_4": None, "line_5": None,
        "line_6": None, "postcode": None, "postage": None,
        "type": n.channel, "status": n.status, "status_reason": n.status_reason,
        "template": template_ref(n.template_id, n.template_version),
        "body": n.body, "subject": n.subject,
        "created_at": iso(n.created_at), "created_by_name": None,
        "sent_at": iso(n.sent_at), "completed_at": iso(n.completed_at),
        "scheduled_for": None, "not_before": iso(n.not_before), "language": n.language,
        "encoding": n.encoding, "fragment_count": n.fragment_count,
    }


def template_body(t, template_id: str | None = None, version: int | None = None,
                  created_at=None, updated_at=None) -> dict:
    """A template as GOV.UK Notify's v2 API shows it: ``body`` is bilingual, Welsh first."""
    subject = None
    if t.type == "email":
        subject = join_bilingual([s for s in (t.subject_cy, t.subject_en) if s],
                                 SUBJECT_SEPARATOR)
    if updated_at is None and template_id is None and t.version > 1:
        updated_at = t.updated_at
    return {
        "id": template_id or t.id, "name": t.name, "type": t.type,
        "created_at": iso(created_at or t.created_at), "updated_at": iso(updated_at),
        "created_by": "hysbys", "version": version or t.version,
        "body": join_bilingual([t.body_cy, t.body_en], BILINGUAL_SEPARATOR[t.type]),
        "subject": subject,
        "letter_contact_block": None, "postage": None,
        "personalisation": {name: {"required": True} for name in template_placeholders(t)},
        "body_cy": t.body_cy, "body_en": t.body_en,
        "subject_cy": t.subject_cy, "subject_en": t.subject_en,
    }

"""The GOV.UK Notify v2 API, as ``notifications-python-client`` calls it.

Field names, statuses, status codes, pagination and error bodies follow GOV.UK
Notify, so an integration written for Notify changes only its base URL.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import request, url_for
from flask_smorest import Blueprint

from services.notify import schemas
from services.notify.models import Notification, ReceivedText, Template
from services.notify.sending import SendRequest, accept
from services.notify.templates import MissingPersonalisation, render_message
from shared.errors import NotFound, ValidationError
from shared.http import authenticated, iso
from shared.runtime import Runtime
from shared.tenancy import Tenant

PAGE_SIZE = 250


def blueprint(runtime: Runtime, nudge) -> Blueprint:
    blp = Blueprint("v2", __name__, url_prefix="/v2",
                    description="GOV.UK Notify v2 compatible API")
    # Authenticate before the body is parsed: a caller without a token gets 401, as on Notify.
    blp.before_request(lambda: authenticated(runtime) and None)

    def base_url() -> str:
        return request.host_url.rstrip("/")

    def template_ref(n_or_t, version: int | None = None) -> dict:
        tid = n_or_t.template_id if isinstance(n_or_t, Notification) else n_or_t.id
        ver = version if version is not None else (
            n_or_t.template_version if isinstance(n_or_t, Notification) else n_or_t.version)
        return {"id": tid, "version": ver, "uri": f"{base_url()}/v2/template/{tid}/version/{ver}"}

    def send(channel: str, args: dict, recipient_field: str):
        caller = authenticated(runtime)
        req = SendRequest(
            channel=channel, template_id=str(args["template_id"]),
            recipient=args[recipient_field], personalisation=args.get("personalisation") or {},
            reference=args.get("reference"), language=args.get("language"),
            key_id=caller.key_id, key_type=caller.key_type, urgent=args.get("urgent", False))
        with runtime.db.transaction() as session:
            tenant = session.get(Tenant, caller.tenant_id)
            n = accept(session, tenant, req, correlation_id=_cid())
            sender = (tenant.setting("sender_ids") or [None])[0]
        nudge()
        body = {"id": n.id, "reference": n.reference,
                "uri": f"{base_url()}/v2/notifications/{n.id}",
                "template": template_ref(n), "scheduled_for": None}
        if channel == "sms":
            body["content"] = {"body": n.body, "from_number": sender or "Hysbys"}
        else:
            body["content"] = {"body": n.body, "subject": n.subject or "",
                               "from_email": f"{tenant.slug}@hysbys.cymru",
                               "one_click_unsubscribe_url": args.get("one_click_unsubscribe_url")}
        return body, 201

    @blp.route("/notifications/sms", methods=["POST"])
    @blp.arguments(schemas.SmsRequest)
    @blp.response(201, schemas.SmsResponse)
    @blp.doc(security=[{"bearer": []}])
    def send_sms(args):
        """Send a text message"""
        return send("sms", args, "phone_number")

    @blp.route("/notifications/email", methods=["POST"])
    @blp.arguments(schemas.EmailRequest)
    @blp.response(201, schemas.EmailResponse)
    @blp.doc(security=[{"bearer": []}])
    def send_email(args):
        """Send an email"""
        return send("email", args, "email_address")

    @blp.route("/notifications/<notification_id>", methods=["GET"])
    @blp.response(200, schemas.NotificationResponse)
    @blp.doc(security=[{"bearer": []}])
    def get_notification(notification_id: str):
        """Get a notification's status by its id"""
        caller = authenticated(runtime)
        nid = _uuid_or_400(notification_id, "notification_id")
        with runtime.db.read() as session:
            n = session.scalars(sa.select(Notification).where(
                Notification.id == nid, Notification.tenant_id == caller.tenant_id)).first()
        if n is None:
            raise NotFound()
        return serialise(n)

    @blp.route("/notifications", methods=["GET"])
    @blp.arguments(schemas.NotificationFilters, location="query")
    @blp.response(200, schemas.NotificationList)
    @blp.doc(security=[{"bearer": []}])
    def list_notifications(args):
        """Notifications newest first, 250 a page; ``links.next`` carries ``older_than``"""
        caller = authenticated(runtime)
        q = sa.select(Notification).where(Notification.tenant_id == caller.tenant_id)
        if args.get("template_type"):
            q = q.where(Notification.channel == args["template_type"])
        statuses = _expand_statuses(request.args.getlist("status"))
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
                q = q.where(sa.or_(Notification.created_at < anchor.created_at, sa.and_(
                    Notification.created_at == anchor.created_at, Notification.id < anchor.id)))
            rows = session.scalars(q.order_by(Notification.created_at.desc(),
                                              Notification.id.desc()).limit(PAGE_SIZE)).all()
        links = {"current": request.url}
        if len(rows) == PAGE_SIZE:
            params = {k: v for k, v in request.args.items(multi=True) if k != "older_than"}
            links["next"] = url_for(".list_notifications", _external=True,
                                    older_than=rows[-1].id, **params)
        return {"notifications": [serialise(n) for n in rows], "links": links}

    @blp.route("/template/<template_id>", methods=["GET"])
    @blp.doc(security=[{"bearer": []}])
    def get_template(template_id: str):
        """A template's latest version"""
        caller = authenticated(runtime)
        return template_body(_find_template(runtime, caller.tenant_id, template_id))

    @blp.route("/template/<template_id>/version/<int:version>", methods=["GET"])
    @blp.doc(security=[{"bearer": []}])
    def get_template_version(template_id: str, version: int):
        """One version of a template"""
        from services.notify.models import TemplateVersion

        caller = authenticated(runtime)
        t = _find_template(runtime, caller.tenant_id, template_id)
        with runtime.db.read() as session:
            v = session.get(TemplateVersion, (t.id, version))
        if v is None:
            raise NotFound()
        return template_body(v, template_id=t.id, version=version, created_at=t.created_at)

    @blp.route("/templates", methods=["GET"])
    @blp.arguments(schemas.TemplateTypeFilter, location="query")
    @blp.doc(security=[{"bearer": []}])
    def list_templates(args):
        """All the tenant's templates, optionally of one type"""
        caller = authenticated(runtime)
        q = sa.select(Template).where(Template.tenant_id == caller.tenant_id,
                                      Template.archived.is_(False))
        if args.get("type"):
            q = q.where(Template.type == args["type"])
        with runtime.db.read() as session:
            rows = session.scalars(q.order_by(Template.name)).all()
        return {"templates": [template_body(t) for t in rows]}

    @blp.route("/template/<template_id>/preview", methods=["POST"])
    @blp.arguments(schemas.PreviewRequest)
    @blp.doc(security=[{"bearer": []}])
    def preview(args, template_id: str):
        """Render a template with personalisation; reports encoding and fragments"""
        caller = authenticated(runtime)
        t = _find_template(runtime, caller.tenant_id, template_id)
        try:
            r = render_message(t.type, {"en": t.body_en, "cy": t.body_cy},
                               {"en": t.subject_en, "cy": t.subject_cy},
                               args.get("personalisation") or {}, args.get("language"))
        except MissingPersonalisation as exc:
            raise ValidationError(str(exc)) from exc
        body = {"id": t.id, "type": t.type, "version": t.version, "body": r.body,
                "subject": r.subject, "html": None, "language": r.language}
        if r.sms:
            body.update(r.sms.as_dict())
        return body

    @blp.route("/received-text-messages", methods=["GET"])
    @blp.arguments(schemas.ReceivedTextFilters, location="query")
    @blp.doc(security=[{"bearer": []}])
    def received_texts(args):
        """Replies from citizens, newest first, 250 a page"""
        caller = authenticated(runtime)
        q = sa.select(ReceivedText).where(ReceivedText.tenant_id == caller.tenant_id)
        with runtime.db.read() as session:
            if args.get("older_than"):
                anchor = session.get(ReceivedText, str(args["older_than"]))
                if anchor is None or anchor.tenant_id != caller.tenant_id:
                    return {"received_text_messages": [], "links": {"current": request.url}}
                q = q.where(sa.or_(ReceivedText.created_at < anchor.created_at, sa.and_(
                    ReceivedText.created_at == anchor.created_at, ReceivedText.id < anchor.id)))
            rows = session.scalars(q.order_by(ReceivedText.created_at.desc(),
                                              ReceivedText.id.desc()).limit(PAGE_SIZE)).all()
        links = {"current": request.url}
        if len(rows) == PAGE_SIZE:
            links["next"] = url_for(".received_texts", _external=True, older_than=rows[-1].id)
        return {"received_text_messages": [
            {"id": r.id, "created_at": iso(r.created_at), "service_id": r.tenant_id,
             "notify_number": r.notify_number, "user_number": r.user_number,
             "content": r.content} for r in rows], "links": links}

    return blp


def _cid() -> str | None:
    from flask import g

    return g.get("correlation_id")


def _uuid_or_400(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(f"{name} is not a valid UUID") from None


def _find_template(runtime: Runtime, tenant_id: str, template_id: str) -> Template:
    tid = _uuid_or_400(template_id, "template_id")
    with runtime.db.read() as session:
        t = session.scalars(sa.select(Template).where(
            Template.id == tid, Template.tenant_id == tenant_id)).first()
    if t is None:
        raise NotFound()
    return t


def _expand_statuses(statuses: list[str]) -> list[str]:
    # Notify's aliases: "failed" covers every failure, "sending" covers created too.
    out: list[str] = []
    for s in statuses:
        if s == "failed":
            out += ["permanent-failure", "temporary-failure", "technical-failure"]
        elif s == "sending":
            out += ["created", "sending", "sent"]
        else:
            out.append(s)
    return out


def serialise(n: Notification) -> dict:
    return {
        "id": n.id, "reference": n.reference,
        "email_address": n.recipient if n.channel == "email" else None,
        "phone_number": n.recipient if n.channel == "sms" else None,
        "line_1": None, "line_2": None, "line_3": None, "line_4": None, "line_5": None,
        "line_6": None, "postcode": None, "postage": None,
        "type": n.channel, "status": n.status, "status_reason": n.status_reason,
        "template": {"id": n.template_id, "version": n.template_version,
                     "uri": f"/v2/template/{n.template_id}/version/{n.template_version}"},
        "body": n.body, "subject": n.subject,
        "created_at": iso(n.created_at), "created_by_name": None,
        "sent_at": iso(n.sent_at), "completed_at": iso(n.completed_at),
        "scheduled_for": None, "language": n.language, "encoding": n.encoding,
        "fragment_count": n.fragment_count,
    }


def template_body(t, template_id: str | None = None, version: int | None = None,
                  created_at=None) -> dict:
    """A template as GOV.UK Notify's v2 API shows it: ``body`` is bilingual, Welsh first."""
    sep = "\n\n" if t.type == "sms" else "\n\n---\n\n"
    subject = None
    if t.type == "email":
        subject = " / ".join(s for s in (t.subject_cy, t.subject_en) if s)
    return {
        "id": template_id or t.id, "name": t.name, "type": t.type,
        "created_at": iso(created_at or t.created_at),
        "updated_at": iso(getattr(t, "updated_at", None)),
        "created_by": "hysbys", "version": version or t.version,
        "body": t.body_cy + sep + t.body_en, "subject": subject,
        "letter_contact_block": None, "postage": None,
        "body_cy": t.body_cy, "body_en": t.body_en,
    }

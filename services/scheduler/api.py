"""The scheduler's HTTP API: subscribers and campaigns, under ``/api``.

Every call is a tenant's (a GOV.UK Notify-style JWT) and every query is scoped
by its tenant id: another tenant's campaign is a 404, exactly like one that
does not exist.
"""
from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import request, url_for
from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError

from services.scheduler import campaigns, schemas, subscribers
from services.scheduler.models import Campaign, Subscriber
from shared import phone
from shared.db import utcnow
from shared.errors import ApiError, Conflict, ValidationError
from shared.http import authenticated, iso
from shared.runtime import Runtime

PAGE_SIZE = 250
MAX_ROWS = 10_000


def subscriber_json(s: Subscriber) -> dict:
    return {"id": s.id, "phone": s.phone, "email": s.email, "language": s.language,
            "attributes": s.attributes or {}, "opted_out": s.opted_out,
            "created_at": iso(s.created_at), "updated_at": iso(s.updated_at)}


def blueprint(runtime: Runtime, nudge_ticker: Callable[[], None]) -> Blueprint:
    """The ``/api`` routes; ``nudge_ticker`` wakes the ticker when something is due now."""
    blp = Blueprint("scheduler", __name__, url_prefix="/api",
                    description="Subscribers, campaigns and their delivery stats")

    @blp.route("/subscribers", methods=["POST"])
    @blp.response(201, schemas.UpsertResult)
    @blp.doc(security=[{"bearer": []}])
    def upsert_subscribers():
        """Add or update subscribers: one JSON object, or a list of them.

        A phone or email already known updates that subscriber.  In a list, bad
        rows are reported by index and the good rows are kept.
        """
        caller = authenticated(runtime)
        payload = _json_payload()
        rows = payload if isinstance(payload, list) else [payload]
        if len(rows) > MAX_ROWS:
            raise ValidationError(f"subscribers: send at most {MAX_ROWS} rows a request")
        try:
            with runtime.db.transaction() as session:
                outcome = subscribers.upsert(session, caller.tenant_id, rows)
                if not isinstance(payload, list) and outcome.errors:
                    # one object, one answer: a bad subscriber is a 400 naming the field
                    raise ValidationError(outcome.errors[0]["reason"])
        except IntegrityError:
            raise Conflict("Another request added one of these subscribers at the same "
                           "time: send the rows again") from None
        return outcome.as_dict()

    @blp.route("/subscribers", methods=["GET"])
    @blp.arguments(schemas.SubscriberFilters, location="query")
    @blp.response(200, schemas.SubscriberList)
    @blp.doc(security=[{"bearer": []}])
    def list_subscribers(args):
        """Subscribers newest first; ``links.next`` carries ``older_than``"""
        caller = authenticated(runtime)
        q = sa.select(Subscriber).where(Subscriber.tenant_id == caller.tenant_id)
        if args.get("phone"):
            q = q.where(Subscriber.phone == (phone.try_normalise(args["phone"]) or args["phone"]))
        if args.get("email"):
            q = q.where(Subscriber.email == args["email"].strip().lower())
        with runtime.db.read() as session:
            rows = _page(session, q, Subscriber, args, args["page_size"])
        return {"subscribers": [subscriber_json(s) for s in rows],
                "links": _links(".list_subscribers", rows, args["page_size"])}

    @blp.route("/campaigns", methods=["POST"])
    @blp.arguments(schemas.CampaignCreate)
    @blp.response(201, schemas.CampaignOut)
    @blp.doc(security=[{"bearer": []}])
    def create_campaign(args):
        """Schedule a campaign (a one-off broadcast for now)"""
        caller = authenticated(runtime)
        now = utcnow()
        with runtime.db.transaction() as session:
            campaign = campaigns.create(session, caller.tenant_id, args, now)
            session.flush()
            body = campaigns.detail(session, campaign)
        if campaign.send_at <= now:
            nudge_ticker()
        return body

    @blp.route("/campaigns", methods=["GET"])
    @blp.arguments(schemas.CampaignFilters, location="query")
    @blp.response(200, schemas.CampaignList)
    @blp.doc(security=[{"bearer": []}])
    def list_campaigns(args):
        """Campaigns newest first, 250 a page; ``links.next`` carries ``older_than``"""
        caller = authenticated(runtime)
        q = sa.select(Campaign).where(Campaign.tenant_id == caller.tenant_id)
        if args.get("status"):
            q = q.where(Campaign.status == args["status"])
        with runtime.db.read() as session:
            rows = _page(session, q, Campaign, args, PAGE_SIZE)
        return {"campaigns": [campaigns.summary(c) for c in rows],
                "links": _links(".list_campaigns", rows, PAGE_SIZE)}

    @blp.route("/campaigns/<campaign_id>", methods=["GET"])
    @blp.response(200, schemas.CampaignOut)
    @blp.doc(security=[{"bearer": []}])
    def get_campaign(campaign_id: str):
        """A campaign with its occurrences and delivery stats per status"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            return campaigns.detail(session, campaigns.find(session, caller.tenant_id,
                                                            campaign_id))

    @blp.route("/campaigns/<campaign_id>/pause", methods=["POST"])
    @blp.response(200, schemas.CampaignOut)
    @blp.doc(security=[{"bearer": []}])
    def pause_campaign(campaign_id: str):
        """Stop a campaign sending; it keeps its place"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            campaign = campaigns.find(session, caller.tenant_id, campaign_id)
            campaigns.pause(campaign)
            return campaigns.detail(session, campaign)

    @blp.route("/campaigns/<campaign_id>/resume", methods=["POST"])
    @blp.response(200, schemas.CampaignOut)
    @blp.doc(security=[{"bearer": []}])
    def resume_campaign(campaign_id: str):
        """Let a paused campaign send again, from where it stopped"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            campaign = campaigns.find(session, caller.tenant_id, campaign_id)
            campaigns.resume(session, campaign)
            body = campaigns.detail(session, campaign)
        nudge_ticker()
        return body

    return blp


def _json_payload():
    """The request's JSON: an object or a list (a bulk upload)."""
    if not request.is_json:
        raise ApiError("Content-Type must be application/json", 415, "UnsupportedMediaTypeError")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("Invalid JSON supplied in POST data", 400, "BadRequestError")
    if not isinstance(body, (dict, list)):
        raise ValidationError("Request body must be a subscriber object or a list of them")
    return body


def _page(session, query: sa.Select, model, args: dict, size: int) -> list:
    """Newest first, ``size`` a page, continuing after ``older_than`` (an id of this tenant's)."""
    if args.get("older_than"):
        anchor = session.scalars(query.where(model.id == str(args["older_than"]))).first()
        if anchor is None:
            return []
        query = query.where(sa.or_(model.created_at < anchor.created_at, sa.and_(
            model.created_at == anchor.created_at, model.id < anchor.id)))
    return list(session.scalars(query.order_by(model.created_at.desc(), model.id.desc())
                                .limit(size)))


def _links(endpoint: str, rows: list, size: int) -> dict:
    links = {"current": request.url}
    if len(rows) == size:
        params = {k: v for k, v in request.args.items() if k != "older_than"}
        links["next"] = url_for(endpoint, _external=True, older_than=rows[-1].id, **params)
    return links

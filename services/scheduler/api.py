"""The scheduler's HTTP API for campaigns, under ``/api/campaigns``.

Every call is a tenant's (a GOV.UK Notify-style JWT) and every query is scoped
by its tenant id: another tenant's campaign is a 404, exactly like one that
does not exist.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from flask_smorest import Blueprint

from services.scheduler import (
    api_audience,
    api_schedule,
    campaigns,
    internal,
    preview,
    schemas,
)
from services.scheduler.api_schedule import require_live_key
from services.scheduler.models import Campaign
from services.scheduler.paging import PAGE_SIZE, links, page
from services.scheduler.templates_client import NotifyTemplates
from shared.db import utcnow
from shared.http import authenticated
from shared.runtime import Runtime


def blueprints(runtime: Runtime, nudge_ticker: Callable[[], None],
               templates: NotifyTemplates | None = None,
               clock: Callable[[], dt.datetime] = utcnow) -> list[Blueprint]:
    """Every blueprint of the scheduler's API, for the app factory; ``templates`` is how
    it asks notify for a template's fragment counts (HYSBYS_NOTIFY_URL by default);
    ``clock`` is "now" for campaigns, rounds and appointments (the service's clock, which
    its ticker reads too)."""
    templates = templates or NotifyTemplates(runtime.settings.internal_url("notify"),
                                             runtime.settings.admin_token)
    return [blueprint(runtime, nudge_ticker, templates, clock), api_audience.blueprint(runtime),
            api_schedule.blueprint(runtime, nudge_ticker, clock), internal.blueprint(runtime)]


def blueprint(runtime: Runtime, nudge_ticker: Callable[[], None],
              templates: NotifyTemplates,
              clock: Callable[[], dt.datetime] = utcnow) -> Blueprint:
    """The ``/api/campaigns`` routes; ``nudge_ticker`` wakes the ticker when something is
    due; ``clock`` is "now" (a send_at in the past, what is planned, the dry run's day)."""
    blp = Blueprint("scheduler", __name__, url_prefix="/api",
                    description="Campaigns: set-up, changes, preview and delivery stats")

    def counts(tenant_id: str, channel: str, template_id, personalisation) -> dict | None:
        """Notify's fragment count per language for an SMS campaign's template (None:
        email, or notify did not answer: the stored or typed figure stands)."""
        if channel != "sms":
            return None
        return templates.fragments(tenant_id, str(template_id), personalisation)

    @blp.route("/campaigns", methods=["POST"])
    @blp.arguments(schemas.CampaignCreate)
    @blp.response(201, schemas.CampaignOut)
    @blp.doc(security=[{"bearer": []}])
    def create_campaign(args):
        """Set up a campaign: a broadcast, collection reminders or appointment reminders.

        The answer carries the capacity numbers (needed against available
        seconds at the busiest moment) and warnings such as quiet hours.
        """
        require_live_key(runtime)
        caller = authenticated(runtime)
        now = clock()
        args = {**args, "fragments_by_language": counts(
            caller.tenant_id, args["channel"], args["template_id"], args["personalisation"])}
        with runtime.db.transaction() as session:
            campaign = campaigns.create(session, caller.tenant_id, args, now)
            session.flush()
            body = campaigns.detail(session, campaign)
        nudge_ticker()
        return body

    @blp.route("/campaigns/<campaign_id>", methods=["PATCH"])
    @blp.arguments(schemas.CampaignPatch)
    @blp.response(200, schemas.CampaignOut)
    @blp.doc(security=[{"bearer": []}])
    def update_campaign(args, campaign_id: str):
        """Change a campaign; occurrences not yet started are planned again"""
        require_live_key(runtime)
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            before = campaigns.find(session, caller.tenant_id, campaign_id)
            wanted = {name: args.get(name, getattr(before, name))
                      for name in ("channel", "template_id", "personalisation")}
        found = counts(caller.tenant_id, wanted["channel"], wanted["template_id"],
                       wanted["personalisation"])
        if found is not None or wanted["channel"] != "sms":
            args = {**args, "fragments_by_language": found}
        with runtime.db.transaction() as session:
            campaign = campaigns.find(session, caller.tenant_id, campaign_id)
            campaigns.update(session, campaign, args, clock())
            body = campaigns.detail(session, campaign)
        nudge_ticker()
        return body

    @blp.route("/campaigns/<campaign_id>/archive", methods=["POST"])
    @blp.response(200, schemas.CampaignOut)
    @blp.doc(security=[{"bearer": []}])
    def archive_campaign(campaign_id: str):
        """Retire a campaign: pending occurrences are cancelled, its history kept"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            campaign = campaigns.find(session, caller.tenant_id, campaign_id)
            campaigns.archive(session, campaign)
            return campaigns.detail(session, campaign)

    @blp.route("/campaigns/<campaign_id>/preview", methods=["GET"])
    @blp.arguments(schemas.PreviewArgs, location="query")
    @blp.alt_response(200, schema=schemas.PreviewOut, success=True)
    @blp.doc(security=[{"bearer": []}])
    def preview_campaign(args, campaign_id: str):
        """A dry run of the next occurrence: who gets what, in which language, when, and
        the fragment count and cost.  Nothing is sent."""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            campaign = campaigns.find(session, caller.tenant_id, campaign_id)
            channel, template_id = campaign.channel, campaign.template_id
            personalisation = campaign.personalisation or {}
        now_counts = counts(caller.tenant_id, channel, template_id, personalisation)
        with runtime.db.read() as session:
            campaign = campaigns.find(session, caller.tenant_id, campaign_id)
            return preview.dry_run(session, campaign, args["limit"],
                                   args["price_per_fragment"], clock(), now_counts)

    @blp.route("/campaigns", methods=["GET"])
    @blp.arguments(schemas.CampaignFilters, location="query")
    @blp.response(200, schemas.CampaignList)
    @blp.doc(security=[{"bearer": []}])
    def list_campaigns(args):
        """Campaigns newest first, 250 a page; ``links.next`` carries ``older_than``"""
        caller = authenticated(runtime)
        q = sa.select(Campaign).where(Campaign.tenant_id == caller.tenant_id)
        for name in ("status", "kind"):
            if args.get(name):
                q = q.where(getattr(Campaign, name) == args[name])
        with runtime.db.read() as session:
            rows = page(session, q, Campaign, args, PAGE_SIZE)
        return {"campaigns": [campaigns.summary(c) for c in rows],
                "links": links(".list_campaigns", rows, PAGE_SIZE)}

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
        require_live_key(runtime)
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            campaign = campaigns.find(session, caller.tenant_id, campaign_id)
            campaigns.resume(session, campaign)
            body = campaigns.detail(session, campaign)
        nudge_ticker()
        return body

    return blp

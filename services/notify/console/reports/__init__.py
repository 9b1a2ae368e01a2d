"""Reports: who was sent what (search by number or email, campaign, day, status), the
delivery rate over time as a chart, and the same search exported as CSV.

From notify's own notifications (the console is part of notify); days are Europe/London
days; the chart is SVG drawn here, beside a table of the same figures.
"""
from __future__ import annotations

import datetime as dt
import uuid

from flask import Response, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from services.notify.console import Area, db, now, requires, tenant_id
from services.notify.console.clients import ServiceError, clients
from services.notify.console.i18n import today_in_london
from services.notify.console.reports import charts, queries
from services.notify.console.rounds import parse_day

bp = Area("reports", __name__, "/reports", nav=(_l("Reports"), "index", "view", 65))

DEFAULT_DAYS = 14
MAX_CHART_DAYS = 92
STATUSES = ("delivered", "sent", "created", "failed", "suppressed", "deferred")


def _search() -> tuple[queries.Search, dict, list[str]]:
    """The search in the query string, what to show back in the form, and its problems."""
    args = request.args
    problems = []
    today = today_in_london(now())
    raw_recipient = (args.get("recipient") or "").strip()
    recipient = queries.recipient_of(raw_recipient) if raw_recipient else None
    if raw_recipient and recipient is None:
        problems.append(_("Enter a real phone number or email address"))
    first = parse_day(args.get("from")) if args.get("from") else today - dt.timedelta(
        days=DEFAULT_DAYS - 1)
    last = parse_day(args.get("to")) if args.get("to") else today
    if first is None or last is None:
        problems.append(_("Enter real dates, for example 1/12/2026"))
        first, last = today - dt.timedelta(days=DEFAULT_DAYS - 1), today
    if last < first:
        problems.append(_("The end date must not be before the start date"))
        first, last = last, first
    campaign = (args.get("campaign") or "").strip() or None
    if campaign:
        try:
            campaign = str(uuid.UUID(campaign))
        except ValueError:
            problems.append(_("Choose a campaign from the list"))
            campaign = None
    status = args.get("status") if args.get("status") in STATUSES else None
    shown = {"recipient": raw_recipient, "from": first, "to": last, "campaign": campaign or "",
             "status": status or ""}
    return (queries.Search(recipient=recipient if not raw_recipient or recipient else "-",
                           campaign_id=campaign, first=first, last=last, status=status),
            shown, problems)


def _campaigns() -> list[dict]:
    try:
        return clients().scheduler.campaigns().get("campaigns") or []
    except ServiceError:
        return []          # the list is a convenience: the report is notify's own


@bp.get("/")
@requires("view")
def index():
    search, shown, problems = _search()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    chart_first = max(search.first, search.last - dt.timedelta(days=MAX_CHART_DAYS - 1))
    with db().read() as s:
        rows, total = queries.search(s, tenant_id(), search, offset=(page - 1) * queries.PAGE)
        days = queries.delivery_by_day(s, tenant_id(), chart_first, search.last,
                                       search.campaign_id)
    from flask_babel import format_date, format_decimal
    chart = charts.line_chart(
        [(format_date(d["date"], "d MMM"), d["rate"]) for d in days],
        title=_("Delivery rate by day"),
        desc=_("The share of finished messages that were delivered, each day. The same "
               "numbers are in the table below."), ident="delivery-rate",
        fmt=lambda v: f"{format_decimal(v, '0.#')}%") if any(d["finished"] for d in days) else None
    return render_template("console/reports/index.html", rows=rows, total=total, page=page,
                           shown=shown, problems=problems, days=days, chart=chart,
                           campaigns=_campaigns(), statuses=STATUSES,
                           pages=(total + queries.PAGE - 1) // queries.PAGE)


@bp.get("/export.csv")
@requires("view")
def export():
    search, _shown, problems = _search()
    header = [_("Created"), _("Channel"), _("Recipient"), _("Template"), _("Template version"),
              _("Campaign"), _("Occurrence"), _("Language"), _("Status"), _("Status reason"),
              _("Sent"), _("Finished"), _("Fragments")]
    tid = tenant_id()

    def generate():
        with db().read() as s:
            yield from queries.export_csv(s, tid, search, header)

    name = f"hysbys-{search.first:%Y%m%d}-{search.last:%Y%m%d}.csv"
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

"""The campaign set-up's answers as the scheduler's JSON, and a campaign's results as rows."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask_babel import format_date
from flask_babel import gettext as _

from services.notify.console.rounds import parse_day
from shared import smstext

LONDON = ZoneInfo("Europe/London")


def days_list(text: str | None) -> list[int] | None:
    """``"7, 1"`` as [7, 1]; None if any part is not a whole number of days."""
    try:
        values = [int(v) for v in (text or "").replace(" ", "").split(",") if v]
    except ValueError:
        return None
    return values if all(0 <= v <= 90 for v in values) else None


def schedule_problem(kind: str, send_on: str | None, days_before: str | None
                     ) -> tuple[str, str] | None:
    """(field, message) for what the schedule page got wrong for this kind, or None."""
    if kind == "broadcast":
        if parse_day(send_on) is None:
            return "send_on", _("Enter the date it goes, for example 14/12/2026")
        return None
    days = days_list(days_before)
    if days is None or (days_before and not days):
        return "days_before", _("Enter whole numbers of days, for example 7, 1")
    if kind == "collection" and len(days) > 1:
        return "days_before", _("A collection reminder goes once: enter one number of days")
    if kind == "collection" and days and days[0] > 14:
        return "days_before", _("A collection reminder goes at most 14 days before")
    if kind == "appointment" and len(days) > 5:
        return "days_before", _("An appointment has at most five reminders")
    return None


def template_fragments(template) -> int:
    """The fragments the longer of the template's two texts needs (its placeholders
    counted as written: the dry run measures the real messages)."""
    if template.type != "sms":
        return 1
    return max(smstext.analyse(smstext.normalise(body or "")).fragments
               for body in (template.body_cy, template.body_en))


def campaign_body(draft: dict, fragments: int) -> dict:
    """``POST /api/campaigns`` for the answers in ``draft``, set up paused."""
    body: dict = {"name": draft["name"], "kind": draft["kind"], "template_id": draft["template"],
                  "channel": draft["channel"], "audience": draft.get("audience_filter") or {},
                  "fragments": max(1, min(fragments, 20)), "start_paused": True}
    at = draft["send_at"]
    days = days_list(draft.get("days_before")) or []
    if draft["kind"] == "broadcast":
        day = parse_day(draft.get("send_on"))
        hour, minute = (int(x) for x in at.split(":"))
        body["send_at"] = dt.datetime.combine(day, dt.time(hour, minute), LONDON).isoformat()
    elif draft["kind"] == "collection":
        schedule: dict = {"days_before": days[0] if days else 1, "at": at}
        codes = [c.strip() for c in (draft.get("rounds") or "").split(",") if c.strip()]
        if codes:
            schedule["rounds"] = codes
        body["schedule"] = schedule
    else:
        body["schedule"] = {"offsets": [{"days_before": d, "at": at} for d in (days or [1])]}
    if draft.get("window_start") and draft.get("window_end"):
        body["window"] = {"start": draft["window_start"], "end": draft["window_end"]}
    return body


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def results(campaign: dict, extra: dict[str, dict[str, int]]) -> list[dict]:
    """One row per occurrence: when, its status and sent, delivered, failed, replies, opt-outs."""
    rows = []
    for o in campaign.get("occurrences") or []:
        t = o.get("totals") or {}
        when = _when(o.get("scheduled_at") or o.get("due_at"))
        more = extra.get(o.get("occurrence_key") or "", {})
        rows.append({"key": o.get("occurrence_key"), "when": when,
                     "label": format_date(when.astimezone(LONDON).date(), "d MMM") if when else "",
                     "status": o.get("status"), "planned": o.get("planned_recipients"),
                     "requested": int(t.get("requested") or o.get("requested") or 0),
                     "sent": int(t.get("sent", 0)), "delivered": int(t.get("delivered", 0)),
                     "failed": int(t.get("failed", 0)), "suppressed": int(t.get("suppressed", 0)),
                     "replies": more.get("replies", 0), "opt_outs": more.get("opt_outs", 0),
                     "note": o.get("note")})
    return rows


def totals(rows: list[dict]) -> dict[str, int]:
    keys = ("requested", "sent", "delivered", "failed", "suppressed", "replies", "opt_outs")
    return {k: sum(r[k] for r in rows) for k in keys}

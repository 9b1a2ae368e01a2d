"""The dry run a team reads before starting a campaign: who gets what, when, in which
language, what it costs and whether it fits the sending capacity.

The scheduler's preview (``GET /api/campaigns/{id}/preview``) says who and when; notify
holds the template, so each sampled message is rendered here with the recipient's own
personalisation and language, exactly as the dispatcher will render it, and its real
encoding (GSM-7 or UCS-2) and fragment count shown.  Nothing is sent or stored.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.notify.templates import MissingPersonalisation, render_message


@dataclass
class SampleMessage:
    recipient: str | None
    language: str                    # "cy", "en" or "cy+en"
    not_before: dt.datetime | None
    text: str | None = None
    subject: str | None = None
    encoding: str | None = None
    fragments: int | None = None
    problem: list[str] = field(default_factory=list)     # missing personalisation


@dataclass
class DryRun:
    recipients: int
    languages: dict[str, int]        # cy, en, cy+en (not known: both, Welsh first)
    segments: int
    fragments_per_message: int
    estimated_cost: float
    price_per_fragment: float
    fits: bool | None
    capacity: dict | None
    occurrences: list[dict]
    sample: list[SampleMessage]
    measured_fragments: dict[str, int] = field(default_factory=dict)

    @property
    def nothing_due(self) -> bool:
        return not self.occurrences


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def summarise(preview: dict, template, channel: str) -> DryRun:
    """The scheduler's preview with each sampled message rendered by notify (``template``:
    the campaign's notify Template row, or None if it has gone)."""
    langs = preview.get("languages") or {}
    languages = {"cy": int(langs.get("cy", 0)), "en": int(langs.get("en", 0)),
                 "cy+en": int(langs.get("unknown", 0))}
    sample = []
    measured: dict[str, int] = {}
    for item in preview.get("sample") or []:
        lang = item.get("language") if item.get("language") in ("cy", "en") else "cy+en"
        msg = SampleMessage(item.get("recipient"), lang, _when(item.get("not_before")))
        if template is not None:
            try:
                rendered = render_message(
                    channel, {"en": template.body_en, "cy": template.body_cy},
                    {"en": template.subject_en, "cy": template.subject_cy},
                    item.get("personalisation") or {}, lang if lang != "cy+en" else None)
            except MissingPersonalisation as exc:
                msg.problem = list(exc.names)
            else:
                msg.text, msg.subject = rendered.body, rendered.subject
                if rendered.sms is not None:
                    msg.encoding, msg.fragments = rendered.sms.encoding, rendered.sms.fragments
                    measured[lang] = max(measured.get(lang, 0), rendered.sms.fragments)
        sample.append(msg)
    capacity = preview.get("capacity")
    return DryRun(
        recipients=int(preview.get("recipients") or 0), languages=languages,
        segments=int(preview.get("segments") or 0),
        fragments_per_message=int(preview.get("fragments_per_message") or 1),
        estimated_cost=float(preview.get("estimated_cost") or 0),
        price_per_fragment=float(preview.get("price_per_fragment") or 0),
        fits=None if not capacity else bool(capacity.get("fits")), capacity=capacity,
        occurrences=[{**o, "scheduled_at": _when(o.get("scheduled_at")),
                      "due_at": _when(o.get("due_at"))} for o in preview.get("occurrences") or []],
        sample=sample, measured_fragments=measured)


def fragments_warning(run: DryRun) -> bool:
    """Whether a rendered sample needs more fragments than the campaign was costed at (the
    cost and the capacity check then understate it: the team should correct ``fragments``)."""
    return any(n > run.fragments_per_message for lang, n in run.measured_fragments.items()
               if lang != "cy+en")

"""What a tenant's team can be asked for: its service types, behind service requests.

Each tenant has its own list (``PUT /api/service-types``: code, name and
description in Welsh and English, keywords in both, group and Open311
attributes); a tenant that has set none has the platform's two,
:data:`DEFAULTS`.  Open311's ``services`` and ``services/{code}`` are the
tenant's list rendered, and Open311 POSTs and citizens' texts make requests of
these types only.

A type's keywords route texts: a reply that *starts with* one of them (``FLY
TIPPING behind the shop``, ``TIPIO ANGHYFREITHLON``) makes a request of that
type, the whole text its description.  They are read after the reply keywords
of ``/api/keywords`` (STOP, HELP, the appointment words, MISSED, WHEN...), so a
type keyword may not be one of those; and no phrase may belong to two types.
Two types are the platform's own and every tenant keeps them where they apply:
``question`` (anything not understood goes to the team) always, and
``missed_collection`` while the MISSED keywords are on (a health board switches
MISSED off with ``PUT /api/keywords``, then may drop the type).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from services.inbound import keywords
from shared.db import utcnow
from shared.errors import ValidationError

MISSED_COLLECTION = "missed_collection"
QUESTION = "question"

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LIST_TYPES = ("singlevaluelist", "multivaluelist")
HEAD_WORDS = 4      # a type keyword is matched on at most the first four words


@dataclass(frozen=True)
class Attribute:
    """One Open311 attribute: a field the service type asks for beyond the standard ones."""

    code: str
    datatype: str
    description: str
    required: bool = False
    order: int = 1
    datatype_description: str | None = None
    variable: bool = True
    values: tuple[tuple[str, str], ...] = ()     # (key, name) for the *valuelist types

    def as_json(self) -> dict:
        return {"code": self.code, "datatype": self.datatype, "description": self.description,
                "required": self.required, "order": self.order,
                "datatype_description": self.datatype_description, "variable": self.variable,
                "values": [{"key": k, "name": n} for k, n in self.values]}


@dataclass(frozen=True)
class ServiceType:
    code: str
    name: dict[str, str]
    description: dict[str, str]
    group: str
    # {"cy": (phrase, ...), "en": (...)}: what routes a text to this type
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    @property
    def metadata(self) -> bool:
        return bool(self.attributes)

    def bilingual(self, what: str) -> str:
        """Welsh first; once when both are the same (or one is empty)."""
        texts = getattr(self, what)
        cy, en = texts.get("cy") or "", texts.get("en") or ""
        if not cy or not en or cy == en:
            return cy or en
        return f"{cy} / {en}"

    def attribute(self, code: str) -> Attribute | None:
        return next((a for a in self.attributes if a.code == code), None)

    def phrases(self) -> list[str]:
        return [p for language in ("cy", "en") for p in self.keywords.get(language, ())]

    def as_json(self) -> dict:
        return {"code": self.code, "name": dict(self.name),
                "description": dict(self.description),
                "keywords": {lang: list(self.keywords.get(lang, ())) for lang in ("cy", "en")},
                "group": self.group, "metadata": self.metadata,
                "attributes": [a.as_json() for a in self.attributes]}


BIN_TYPES = (("general", "Gwastraff cyffredinol / General waste"),
             ("recycling", "Ailgylchu / Recycling"),
             ("food", "Gwastraff bwyd / Food waste"),
             ("garden", "Gwastraff gardd / Garden waste"),
             ("glass", "Gwydr / Glass"))

DEFAULTS: dict[str, ServiceType] = {
    MISSED_COLLECTION: ServiceType(
        code=MISSED_COLLECTION,
        name={"cy": "Casgliad wedi'i fethu", "en": "Missed collection"},
        description={"cy": "Bin neu sach na chafodd ei gasglu ar y diwrnod casglu.",
                     "en": "A bin or bag that was not collected on collection day."},
        group="waste",
        # reached by the MISSED reply keywords (/api/keywords); these add none
        keywords={"cy": (), "en": ()},
        attributes=(
            Attribute("uprn", "string", "Cyfeirnod Eiddo Unigryw / Unique Property Reference "
                      "Number (UPRN) of the address", order=1,
                      datatype_description="Up to 12 digits"),
            Attribute("bin_type", "singlevaluelist", "Pa fin? / Which bin?", order=2,
                      values=BIN_TYPES),
        )),
    QUESTION: ServiceType(
        code=QUESTION,
        name={"cy": "Cwestiwn i'r tîm", "en": "Question for the team"},
        description={"cy": "Neges gan ddinesydd nad yw'n gofyn am ddim arall: bydd rhywun "
                           "o'r tîm yn ateb.",
                     "en": "A message from a citizen that asks for nothing else: someone "
                           "from the team will answer."},
        group="contact",
        keywords={"cy": ("CWESTIWN",), "en": ("QUESTION",)}),
}


# -- a tenant's own list -------------------------------------------------------------

def configured(session: Session, tenant_id: str) -> list[dict] | None:
    from services.inbound.models import ServiceTypeSet

    row = session.get(ServiceTypeSet, tenant_id)
    return list(row.types) if row is not None and row.types else None


def for_tenant(session: Session, tenant_id: str) -> dict[str, ServiceType]:
    """{code: type} in the tenant's order: its own list, or the defaults."""
    own = configured(session, tenant_id)
    if own is None:
        return dict(DEFAULTS)
    return {t["code"]: from_json(t) for t in own}


def from_json(d: dict) -> ServiceType:
    return ServiceType(
        code=d["code"], name=dict(d["name"]), description=dict(d.get("description") or {}),
        group=d.get("group") or "",
        keywords={lang: tuple((d.get("keywords") or {}).get(lang, ())) for lang in ("cy", "en")},
        attributes=tuple(Attribute(
            code=a["code"], datatype=a["datatype"], description=a["description"],
            required=bool(a.get("required")), order=int(a.get("order") or 1),
            datatype_description=a.get("datatype_description"),
            variable=a.get("variable", True),
            values=tuple((v["key"], v["name"]) for v in a.get("values") or ()))
            for a in d.get("attributes") or ()))


def save(session: Session, tenant_id: str, types: list[ServiceType]) -> None:
    from services.inbound.models import ServiceTypeSet

    row = session.get(ServiceTypeSet, tenant_id)
    if row is None:
        row = ServiceTypeSet(tenant_id=tenant_id)
        session.add(row)
    row.types = [t.as_json() for t in types]
    row.updated_at = utcnow()


def validate(proposed: list[dict], reply_words: keywords.Vocabulary) -> list[ServiceType]:
    """The tenant's types, cleaned, or a 400 naming the first bad field.

    ``reply_words`` is the vocabulary in force (``/api/keywords``): a type keyword
    may not be one of its phrases, which are read first.
    """
    out: list[ServiceType] = []
    codes: set[str] = set()
    owner: dict[str, str] = {}
    missed_words = {k for k, s in reply_words.items() if s.intent == keywords.MISSED}
    for i, raw in enumerate(proposed):
        where = f"service_types[{i}]"
        code = raw["code"]
        if code in codes:
            raise ValidationError(f"{where}.code {code!r} appears twice")
        codes.add(code)
        phrases: dict[str, tuple[str, ...]] = {}
        for language in ("cy", "en"):
            cleaned = []
            for j, phrase in enumerate((raw.get("keywords") or {}).get(language, [])):
                name = f"{where}.keywords.{language}[{j}]"
                text, key = keywords.normalise(phrase), keywords.compact(phrase)
                if not key or not any(ch.isalpha() for ch in key):
                    raise ValidationError(f"{name} must contain a letter")
                if key in keywords.FIXED:
                    raise ValidationError(f"{name} {text} is an opt-out or opt-in word")
                sense = reply_words.get(key)
                if sense is not None and not (code == MISSED_COLLECTION and key in missed_words):
                    raise ValidationError(f"{name} {text} is already the {sense.intent} reply "
                                          "keyword (/api/keywords), which is read first")
                if key in owner and owner[key] != code:
                    raise ValidationError(f"{name} {text} is already a keyword of "
                                          f"{owner[key]}")
                owner[key] = code
                if text not in cleaned:
                    cleaned.append(text)
            phrases[language] = tuple(cleaned)
        attributes = _attributes(where, raw.get("attributes") or [])
        if raw.get("metadata") is not None and raw["metadata"] != bool(attributes):
            raise ValidationError(f"{where}.metadata must be {str(bool(attributes)).lower()}: "
                                  "GeoReport v2's metadata says whether a type has attributes")
        description = raw.get("description") or {}
        out.append(ServiceType(
            code=code, name={"cy": raw["name"]["cy"].strip(), "en": raw["name"]["en"].strip()},
            description={"cy": (description.get("cy") or "").strip(),
                         "en": (description.get("en") or "").strip()},
            group=(raw.get("group") or "").strip(), keywords=phrases, attributes=attributes))
    if QUESTION not in codes:
        raise ValidationError("service_types must include question: a text nothing else "
                              "understands becomes a question for the team")
    if MISSED_COLLECTION not in codes and missed_words:
        raise ValidationError("service_types must include missed_collection while the MISSED "
                              "reply keywords are on (switch them off with PUT /api/keywords "
                              "and missed: {cy: [], en: []})")
    return out


def _attributes(where: str, raw: list[dict]) -> tuple[Attribute, ...]:
    seen: set[str] = set()
    out = []
    for k, a in enumerate(raw):
        name = f"{where}.attributes[{k}]"
        if a["code"] in seen:
            raise ValidationError(f"{name}.code {a['code']!r} appears twice")
        seen.add(a["code"])
        values = tuple((v["key"], v["name"].strip()) for v in a.get("values") or [])
        if a["datatype"] in LIST_TYPES and not values:
            raise ValidationError(f"{name}.values are required for a {a['datatype']}")
        if a["datatype"] not in LIST_TYPES and values:
            raise ValidationError(f"{name}.values are only for singlevaluelist and "
                                  "multivaluelist")
        if len({key for key, _ in values}) != len(values):
            raise ValidationError(f"{name}.values has a key twice")
        out.append(Attribute(code=a["code"], datatype=a["datatype"],
                             description=a["description"].strip(),
                             required=bool(a.get("required")), order=a.get("order") or k + 1,
                             datatype_description=a.get("datatype_description"),
                             variable=a.get("variable", True), values=values))
    return tuple(out)


def route(body: str, types: dict[str, ServiceType]) -> ServiceType | None:
    """The type whose keyword the text starts with (longest phrase first), or None."""
    table = {keywords.compact(p): t for t in types.values() for p in t.phrases()}
    if not table:
        return None
    tokens = keywords.normalise(body).split(" ")
    for size in range(min(HEAD_WORDS, len(tokens)), 0, -1):
        found = table.get(keywords.compact(" ".join(tokens[:size])))
        if found is not None:
            return found
    return None


def clashes(types: dict[str, ServiceType], reply_words: keywords.Vocabulary) -> str | None:
    """A message naming the first type keyword the new reply keywords would shadow, or None."""
    missed = {k for k, s in reply_words.items() if s.intent == keywords.MISSED}
    for t in types.values():
        for phrase in t.phrases():
            key = keywords.compact(phrase)
            sense = reply_words.get(key)
            if sense is not None and not (t.code == MISSED_COLLECTION and key in missed):
                return (f"keywords.{sense.intent}: {keywords.normalise(phrase)} is already a "
                        f"keyword of the service type {t.code} (/api/service-types)")
    return None


# What the citizen is told when a text makes a request of one of the tenant's own types
LOGGED = {"cy": "{name}: diolch, rydym wedi cofnodi eich adroddiad ({service}). "
                "Cyfeirnod: {reference}",
          "en": "{name}: thank you, we have logged your report ({service}). "
                "Reference: {reference}"}


def logged_answer(tenant_name: str, reference: str, service: ServiceType) -> dict[str, str]:
    """The auto-reply personalisation (``reply_cy``/``reply_en``) for a request of ``service``."""
    return {f"reply_{lang}": LOGGED[lang].format(name=tenant_name, reference=reference,
                                                 service=service.name[lang])
            for lang in ("cy", "en")}


def plan_for(plan, body: str, types: dict[str, ServiceType]):
    """A reply nothing else understood, routed by the tenant's type keywords: a
    :class:`~services.inbound.routing.Plan` for a request of that type, or ``plan``."""
    from services.inbound import routing

    if plan.action != routing.QUESTION or plan.keyword is not None or plan.note:
        return plan
    found = route(body, types)
    if found is None or found.code == QUESTION:
        return plan
    if found.code == MISSED_COLLECTION:
        return routing.Plan(routing.MISSED, keywords.MISSED)
    return routing.Plan(routing.REPORT, None, service_code=found.code)

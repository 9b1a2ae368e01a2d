"""What a tenant's team can be asked for: the service types behind service requests.

Every tenant offers the same two, in Welsh and English (Welsh first, as the
Welsh Language Standards ask).  Open311's ``services`` and ``services/{code}``
are this module rendered; a citizen's text makes one of the same two.
"""
from __future__ import annotations

from dataclasses import dataclass, field

MISSED_COLLECTION = "missed_collection"
QUESTION = "question"

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


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


@dataclass(frozen=True)
class ServiceType:
    code: str
    name: dict[str, str]
    description: dict[str, str]
    group: str
    keywords: tuple[str, ...]
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    @property
    def metadata(self) -> bool:
        return bool(self.attributes)

    def bilingual(self, what: str) -> str:
        texts = getattr(self, what)
        return f"{texts['cy']} / {texts['en']}"

    def attribute(self, code: str) -> Attribute | None:
        return next((a for a in self.attributes if a.code == code), None)


BIN_TYPES = (("general", "Gwastraff cyffredinol / General waste"),
             ("recycling", "Ailgylchu / Recycling"),
             ("food", "Gwastraff bwyd / Food waste"),
             ("garden", "Gwastraff gardd / Garden waste"),
             ("glass", "Gwydr / Glass"))

SERVICE_TYPES: dict[str, ServiceType] = {
    MISSED_COLLECTION: ServiceType(
        code=MISSED_COLLECTION,
        name={"cy": "Casgliad wedi'i fethu", "en": "Missed collection"},
        description={"cy": "Bin neu sach na chafodd ei gasglu ar y diwrnod casglu.",
                     "en": "A bin or bag that was not collected on collection day."},
        group="waste",
        keywords=("missed", "bin", "collection", "colli", "casgliad", "wedi'i fethu"),
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
        keywords=("question", "cwestiwn", "reply", "ateb")),
}


def service_type(code: str) -> ServiceType | None:
    return SERVICE_TYPES.get(code)

"""How Open311 GeoReport v2 documents are written: XML as the standard requires, JSON as arrays.

The XML is schemaless and without a namespace, preceded by the declaration
with ``encoding="utf-8"``; JSON is the Spark-convention mapping of the same
document (a list of the repeated element's objects, the service definition
the one object).  Timestamps are W3C datetimes in UTC (``2026-11-25T18:00:00Z``).
"""
from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

from flask import Response, request

from services.inbound.catalogue import ServiceType
from services.inbound.models import ServiceRequest

FORMATS = ("xml", "json")
XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
JURISDICTION = {"in": "query", "name": "jurisdiction_id", "required": True,
                "schema": {"type": "string"}, "description": "the tenant's slug"}


class Open311Error(Exception):
    """An error as the standard reports it: an HTTP status and a description."""

    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


def requested_format() -> str:
    """The format named by the path's extension (JSON when there is none we know)."""
    return "xml" if request.path.endswith(".xml") else "json"


def check(ext: str) -> None:
    if ext not in FORMATS:
        raise Open311Error(400, f"format {ext!r} is not supported: use xml or json")


def _xml_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _append(parent: ET.Element, name: str, value) -> None:
    child = ET.SubElement(parent, name)
    if isinstance(value, dict):
        for key, item in value.items():
            _append(child, key, item)
    elif isinstance(value, list):
        # a list is a container of one repeated element: attributes/attribute, values/value
        singular = name[:-1] if name.endswith("s") else name
        for item in value:
            _append(child, singular, item)
    else:
        child.text = _xml_value(value)


def xml_document(root: str, item: str | None, content) -> bytes:
    element = ET.Element(root)
    if item is None:
        for key, value in content.items():
            _append(element, key, value)
    else:
        for entry in content:
            _append(element, item, entry)
    # ElementTree writes no declaration for utf-8; the standard asks for this one
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8")


def render(ext: str, root: str, item: str, entries: list[dict], status: int = 200) -> Response:
    """A list document: ``<root><item>…</item>…</root>`` or a JSON array."""
    if ext == "xml":
        return Response(xml_document(root, item, entries), status=status, content_type=XML_TYPE)
    return Response(json.dumps(entries, ensure_ascii=False), status=status,
                    content_type=JSON_TYPE)


def errors(ext: str, code: int, descriptions: list[str]) -> Response:
    entries = [{"code": code, "description": d} for d in descriptions]
    return render(ext, "errors", "error", entries, status=code)


def definition(ext: str, service: ServiceType) -> Response:
    body = {"service_code": service.code,
            "attributes": [attribute_json(a) for a in service.attributes]}
    if ext == "xml":
        return Response(xml_document("service_definition", None, body), content_type=XML_TYPE)
    return Response(json.dumps(body, ensure_ascii=False), content_type=JSON_TYPE)


def discovery(ext: str, url: str) -> Response:
    """The Service Discovery document: one production GeoReport v2 endpoint."""
    changeset = "2026-11-25T00:00:00Z"
    body = {"changeset": changeset, "contact": "Your council or health board's service team",
            "key_service": "An API key from your council or health board (hysbys keys create)",
            "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": url,
                           "changeset": changeset, "type": "production",
                           "formats": [XML_TYPE.split(";")[0], JSON_TYPE.split(";")[0]]}]}
    if ext == "xml":
        return Response(xml_document("discovery", None, body), content_type=XML_TYPE)
    return Response(json.dumps(body), content_type=JSON_TYPE)


def attribute_json(a) -> dict:
    return {"variable": a.variable, "code": a.code, "datatype": a.datatype,
            "required": a.required, "datatype_description": a.datatype_description,
            "order": a.order, "description": a.description,
            "values": [{"key": key, "name": name} for key, name in a.values]}


def service_json(s: ServiceType, extra_keywords: list[str] = ()) -> dict:
    """A service list entry; ``keywords`` the type's own phrases (and, for missed
    collections, the MISSED reply words in force), comma separated."""
    words = list(dict.fromkeys([*s.phrases(), *extra_keywords]))
    return {"service_code": s.code, "service_name": s.bilingual("name"),
            "description": s.bilingual("description"), "metadata": s.metadata,
            "type": "realtime", "keywords": ", ".join(words), "group": s.group}


def w3c_time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# What a public read (no api_key) shows of a request: GeoReport v2's fields that say
# what the request is and where it stands, none that identify or quote the citizen.
PUBLIC_FIELDS = ("service_request_id", "status", "status_notes", "service_name",
                 "service_code", "agency_responsible", "service_notice",
                 "requested_datetime", "updated_datetime", "expected_datetime")
# Shown only with the tenant's api_key (null otherwise): the citizen's words, their
# home (a missed bin's address is where someone lives), the photo they took.
PRIVATE_FIELDS = ("description", "address", "address_id", "zipcode", "lat", "long",
                  "media_url")


def request_json(r: ServiceRequest, full: bool, services: dict[str, ServiceType]) -> dict:
    """A request as GET requests shows it.

    Without the key (``full`` false): :data:`PUBLIC_FIELDS` only, and ``status_notes``
    is the notes the team set as public (``public_status_notes``), never its own notes
    or answers to the citizen.  With the tenant's key: the full record, the team's
    notes as ``status_notes``.
    """
    service = services.get(r.service_code)
    body = {
        "service_request_id": r.reference, "status": r.status,
        "status_notes": (r.status_notes or r.public_status_notes) if full
        else r.public_status_notes,
        "service_name": service.bilingual("name") if service else r.service_code,
        "service_code": r.service_code, "description": r.description,
        "agency_responsible": r.agency_responsible, "service_notice": r.service_notice,
        "requested_datetime": w3c_time(r.requested_at),
        "updated_datetime": w3c_time(r.updated_at),
        "expected_datetime": w3c_time(r.expected_at),
        "address": r.address, "address_id": r.address_id, "zipcode": r.zipcode,
        "lat": r.lat, "long": r.long, "media_url": r.media_url,
    }
    if not full:
        body.update({name: None for name in PRIVATE_FIELDS})
    return body


def comma_list(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def w3c(args, name: str) -> dt.datetime | None:
    """A W3C datetime argument (timezone required), or None when absent."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C datetime such as "
                                "2026-11-25T00:00:00Z") from None
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} must include a time zone (Z or +HH:MM)")
    return value.astimezone(dt.UTC)


# -- the OpenAPI description of these documents (JSON as JSON Schema, XML as text) ---

def _nullable(kind: str) -> dict:
    return {"type": kind, "nullable": True}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _array(items: dict) -> dict:
    return {"type": "array", "items": items}


_STRING, _INTEGER, _BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
ERROR_DOC = _array(_object({"code": _INTEGER, "description": _STRING}, ("code", "description")))
DISCOVERY_DOC = _object({
    "changeset": _STRING, "contact": _STRING, "key_service": _STRING,
    "endpoints": _array(_object({"specification": _STRING, "url": _STRING,
                                 "changeset": _STRING, "type": _STRING,
                                 "formats": _array(_STRING)}))})
SERVICES_DOC = _array(_object({
    "service_code": _STRING, "service_name": _STRING, "description": _STRING,
    "metadata": _BOOLEAN, "type": _STRING, "keywords": _STRING, "group": _STRING}))
DEFINITION_DOC = _object({
    "service_code": _STRING,
    "attributes": _array(_object({
        "variable": _BOOLEAN, "code": _STRING, "datatype": _STRING, "required": _BOOLEAN,
        "datatype_description": _nullable("string"), "order": _INTEGER,
        "description": _STRING,
        "values": _array(_object({"key": _STRING, "name": _STRING}))}))})
REQUESTS_DOC = _array(_object({
    "service_request_id": _STRING, "status": _STRING, "status_notes": _nullable("string"),
    "service_name": _STRING, "service_code": _STRING, "description": _nullable("string"),
    "agency_responsible": _nullable("string"), "service_notice": _nullable("string"),
    "requested_datetime": _nullable("string"), "updated_datetime": _nullable("string"),
    "expected_datetime": _nullable("string"), "address": _nullable("string"),
    "address_id": _nullable("string"), "zipcode": _nullable("string"),
    "lat": _nullable("number"), "long": _nullable("number"),
    "media_url": _nullable("string")}))
CREATED_DOC = _array(_object({"service_request_id": _STRING,
                              "service_notice": _nullable("string"),
                              "account_id": _nullable("string")}))
CREATE_FORM_DOC = {"required": True, "content": {"application/x-www-form-urlencoded": {
    "schema": _object({
        "jurisdiction_id": {**_STRING, "description": "the tenant's slug"},
        "api_key": {**_STRING, "description": "the tenant's API key"},
        "service_code": _STRING, "lat": _STRING, "long": _STRING, "address_string": _STRING,
        "address_id": _STRING, "email": _STRING, "device_id": _STRING, "account_id": _STRING,
        "first_name": _STRING, "last_name": _STRING, "phone": _STRING,
        "description": _STRING, "media_url": _STRING},
        ("jurisdiction_id", "api_key", "service_code"))}}}
TOKEN_DOC = _array(_object({"service_request_id": _STRING, "token": _STRING}))


def _content(schema: dict) -> dict:
    return {"application/json": {"schema": schema},
            "text/xml": {"schema": {"type": "string",
                                    "description": "the same document as schemaless XML"}}}


def responses(status: int, schema: dict, description: str, errors: tuple[int, ...]) -> dict:
    """An Open311 operation's answers for ``@blp.doc(responses=…)``: its document, in the
    format its extension names, and the standard's errors (``[{code, description}]``)."""
    out = {str(status): {"description": description, "content": _content(schema)}}
    for code in errors:
        out[str(code)] = {"description": "Open311 errors: [{code, description}] "
                                         "(<errors><error> in XML)",
                          "content": _content(ERROR_DOC)}
    return out

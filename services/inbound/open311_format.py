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

from services.inbound.catalogue import SERVICE_TYPES, ServiceType
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


def service_json(s: ServiceType) -> dict:
    return {"service_code": s.code, "service_name": s.bilingual("name"),
            "description": s.bilingual("description"), "metadata": s.metadata,
            "type": "realtime", "keywords": ", ".join(s.keywords), "group": s.group}


def w3c_time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def request_json(r: ServiceRequest, full: bool) -> dict:
    """A request as GET requests shows it; personal fields only when ``full``."""
    service = SERVICE_TYPES.get(r.service_code)
    return {
        "service_request_id": r.reference, "status": r.status, "status_notes": r.status_notes,
        "service_name": service.bilingual("name") if service else r.service_code,
        "service_code": r.service_code, "description": r.description if full else None,
        "agency_responsible": r.agency_responsible, "service_notice": r.service_notice,
        "requested_datetime": w3c_time(r.requested_at),
        "updated_datetime": w3c_time(r.updated_at),
        "expected_datetime": w3c_time(r.expected_at),
        "address": r.address if full else None, "address_id": r.address_id if full else None,
        "zipcode": r.zipcode if full else None, "lat": r.lat if full else None,
        "long": r.long if full else None, "media_url": r.media_url if full else None,
    }


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

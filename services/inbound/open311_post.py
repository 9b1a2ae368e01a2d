"""POST Service Request: the form an Open311 client sends, checked field by field.

``api_key`` is the tenant's API key string in GOV.UK Notify's format
(``{name}-{tenant id}-{secret}``): it is checked by decrypting the tenant's
key secrets (the replica every service keeps) and comparing in constant time,
and must belong to the jurisdiction named.  A missing, wrong, revoked or other
tenant's key is a 403, as the standard says.
"""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from services.inbound import catalogue, service_requests
from services.inbound.catalogue import Attribute, ServiceType
from services.inbound.open311_format import Open311Error, comma_list
from shared import phone
from shared.crypto import constant_time_equals
from shared.runtime import Runtime
from shared.schemas import strip_control_characters
from shared.tenancy import ApiKey, Tenant

MAX_DESCRIPTION = 4000          # the standard's limit
MAX_FIELD = 200
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SCOPE = "inbound"


def verified_key(runtime: Runtime, tenant: Tenant, api_key: str | None) -> ApiKey | None:
    """The tenant's live key that ``api_key`` is, or None."""
    api_key = (api_key or "").strip()
    if len(api_key) < 74 or api_key[-73:-37] != tenant.id:
        return None
    secret = api_key[-36:]
    with runtime.db.read() as session:
        keys = session.scalars(sa.select(ApiKey).where(ApiKey.tenant_id == tenant.id)).all()
    for key in keys:
        try:
            stored = runtime.box.decrypt(key.secret_encrypted)
        except ValueError:
            continue
        if constant_time_equals(stored, secret):
            return key if key.revoked_at is None else None
    return None


def key_matches(runtime: Runtime, tenant: Tenant, api_key: str | None) -> bool:
    return bool(api_key) and verified_key(runtime, tenant, api_key) is not None


def create(runtime: Runtime, tenant: Tenant, req):
    """Check the form and make the request; Open311Error naming the first problem."""
    if req.is_json:
        raise Open311Error(400, "POST requests takes application/x-www-form-urlencoded, "
                                "not JSON")
    form = req.form
    key = verified_key(runtime, tenant, form.get("api_key"))
    if key is None or (key.scopes and SCOPE not in key.scopes):
        raise Open311Error(403, "Invalid api_key received -- can't proceed with "
                                "create_request.")
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code was not provided")
    with runtime.db.read() as session:
        service = catalogue.for_tenant(session, tenant.id).get(code)
    if service is None:
        raise Open311Error(404, f"service_code {code!r} was not found")
    fields = {**_location(form), **_person(form), **_report(form)}
    attributes = _attributes(form, service)
    if attributes.get("uprn") and not fields.get("address_id"):
        fields["address_id"] = attributes["uprn"]
    with runtime.db.transaction() as session:
        return service_requests.create(session, tenant.id, service_code=code, source="open311",
                                       changed_by=f"key:{key.id}", attributes=attributes,
                                       agency_responsible=tenant.name, **fields)


def _text(form, name: str, limit: int = MAX_FIELD) -> str | None:
    value = strip_control_characters(form.get(name) or "").strip()
    if len(value) > limit:
        raise Open311Error(400, f"{name} may be at most {limit} characters")
    return value or None


def _location(form) -> dict:
    lat, long = _text(form, "lat", 32), _text(form, "long", 32)
    address, address_id = _text(form, "address_string", 500), _text(form, "address_id", 64)
    if (lat is None) != (long is None):
        raise Open311Error(400, "lat and long must both be sent")
    out: dict = {"address": address, "address_id": address_id}
    if lat is not None:
        try:
            out["lat"], out["long"] = float(lat), float(long)
        except ValueError:
            raise Open311Error(400, "lat and long must be numbers (WGS84)") from None
        if not (-90 <= out["lat"] <= 90 and -180 <= out["long"] <= 180):
            raise Open311Error(400, "lat must be within ±90 and long within ±180")
    elif not (address or address_id):
        raise Open311Error(400, "a location is required: lat and long, address_string "
                                "or address_id")
    return out


def _person(form) -> dict:
    out = {name: _text(form, name) for name in
           ("first_name", "last_name", "account_id", "device_id")}
    email = _text(form, "email", 320)
    if email and not _EMAIL.match(email):
        raise Open311Error(400, "email is not a valid email address")
    out["email"] = email
    raw_phone = _text(form, "phone", 32)
    if raw_phone:
        try:
            out["phone"] = phone.normalise(raw_phone)
        except phone.InvalidPhoneNumber as exc:
            raise Open311Error(400, f"phone: {exc}") from None
    return out


def _report(form) -> dict:
    media = _text(form, "media_url", 2000)
    if media and not re.match(r"^https?://\S+$", media):
        raise Open311Error(400, "media_url must be an http or https URL")
    return {"description": _text(form, "description", MAX_DESCRIPTION), "media_url": media}


def _attributes(form, service: ServiceType) -> dict:
    given: dict[str, list[str]] = {}
    for name in form:
        match = _ATTRIBUTE.match(name)
        if match:
            given.setdefault(match.group(1), []).extend(form.getlist(name))
    out: dict = {}
    for code, values in given.items():
        attribute = service.attribute(code)
        if attribute is None:
            raise Open311Error(400, f"attribute[{code}] is not an attribute of "
                                    f"{service.code}")
        out[code] = _attribute_value(attribute, [v for v in values if v.strip()])
    for attribute in service.attributes:
        if attribute.required and out.get(attribute.code) in (None, [], ""):
            raise Open311Error(400, f"attribute[{attribute.code}] is required")
    return {k: v for k, v in out.items() if v not in (None, [], "")}


def _attribute_value(a: Attribute, values: list[str]):
    name = f"attribute[{a.code}]"
    if a.datatype == "multivaluelist":
        chosen = [v for part in values for v in comma_list(part)]
        keys = {key for key, _ in a.values}
        bad = [v for v in chosen if v not in keys]
        if bad:
            raise Open311Error(400, f"{name} {bad[0]!r} is not one of {', '.join(sorted(keys))}")
        return chosen
    if len(values) > 1:
        raise Open311Error(400, f"{name} takes one value")
    value = strip_control_characters(values[0]).strip()[:MAX_DESCRIPTION] if values else None
    if value is None:
        return None
    if a.datatype == "singlevaluelist" and value not in {key for key, _ in a.values}:
        raise Open311Error(400, f"{name} {value!r} is not one of "
                                f"{', '.join(key for key, _ in a.values)}")
    if a.datatype == "number":
        try:
            return float(value)
        except ValueError:
            raise Open311Error(400, f"{name} must be a number") from None
    if a.datatype == "datetime":
        try:
            return dt.datetime.fromisoformat(value).isoformat()
        except ValueError:
            raise Open311Error(400, f"{name} must be an ISO 8601 datetime") from None
    return value

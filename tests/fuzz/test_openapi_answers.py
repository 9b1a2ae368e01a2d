"""The answers a tenant with data really gets are the ones each OpenAPI document promises.

Generated requests against an empty tenant mostly meet errors; here every operation
whose answer was undocumented before finding F6 is called with real data (a round,
holiday changes, subscribers, a campaign, an appointment, service requests made through
Open311, a language preference) and its answer checked against the document: status
documented, Content-Type declared, body conforming — for Open311 in JSON and XML.
"""
from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
import sqlalchemy as sa
from notifications_python_client.authentication import create_jwt_token
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.inbound.models import LanguagePreference, ServiceRequest

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
NUMBER = "+447700900123"


@pytest.fixture
def tenant_headers(fuzz_platform):
    """A fresh token at each call (a token's ``iat`` must be within 30 seconds)."""
    key = fuzz_platform[1].api_key
    return lambda: {"Authorization": "Bearer " + create_jwt_token(key[-36:], key[-73:-37])}


def _check(app, path: str, method: str, headers, expect: int, **case_kwargs):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    case = schema[path][method].Case(**case_kwargs)
    response = case.call(headers=headers() if callable(headers) else headers)
    assert response.status_code == expect, response.text[:500]
    case.validate_response(response, checks=CHECKS)
    return response


def test_the_scheduler_answers_as_documented(fuzz_platform, tenant_headers):
    platform, tenant = fuzz_platform
    app, headers = platform.scheduler.create_app(), tenant_headers
    admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
    today = dt.date.today()
    monday = today + dt.timedelta(days=7 - today.weekday())
    client = app.test_client()
    r = client.post("/api/subscribers", headers=headers(), json=[
        {"phone": NUMBER, "language": "cy", "attributes": {"round": "mon"}}])
    assert r.status_code == 201, r.get_data(as_text=True)

    _check(app, "/api/rounds", "POST", headers, 201, body={
        "code": "mon", "name": "Monday", "rrule": "FREQ=WEEKLY;BYDAY=MO",
        "start": monday.isoformat(), "moves": [{"from": monday.isoformat(), "to": None}],
        "description": {"cy": "Biniau", "en": "Bins"}}, media_type="application/json")
    _check(app, "/api/rounds", "GET", headers, 200)
    _check(app, "/api/rounds/{code}", "GET", headers, 200, path_parameters={"code": "mon"})
    _check(app, "/api/rounds/{code}", "PATCH", headers, 200, path_parameters={"code": "mon"},
           body={"name": "Dydd Llun"}, media_type="application/json")
    changes = _check(app, "/api/rounds/changes", "POST", headers, 200, body={"changes": [
        {"from": (monday + dt.timedelta(days=7)).isoformat(),
         "to": (monday + dt.timedelta(days=8)).isoformat()},
        {"from": (monday + dt.timedelta(days=2)).isoformat(), "to": None}]},
        media_type="application/json").json()
    assert len(changes["applied"]) == 1 and len(changes["errors"]) == 1

    _check(app, "/api/subscribers/upload", "POST", headers, 201,
           body="phone,language,round\n07700900124,en,mon\nnot a number,en,mon\n",
           media_type="text/csv")

    template = "6f1c1f4e-56a8-4b8a-9d0c-3d5b3c3b1a11"
    campaign = client.post("/api/campaigns", headers=headers(), json={
        "name": "clinic", "kind": "appointment", "template_id": template, "channel": "sms",
        "schedule": {"offsets": [{"days_before": 1, "at": "10:00"}]}}).get_json()
    starts = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).replace(microsecond=0)
    booking = {"external_reference": "clinic/1", "campaign_id": campaign["id"],
               "phone": NUMBER, "language": "cy", "starts_at": starts.isoformat()}
    _check(app, "/api/appointments", "POST", headers, 201, body=booking,
           media_type="application/json")
    _check(app, "/api/appointments", "POST", headers, 200, body=booking,
           media_type="application/json")
    ref = {"reference": "clinic/1"}
    _check(app, "/api/appointments/{reference}", "GET", headers, 200, path_parameters=ref)
    _check(app, "/api/appointments/{reference}", "PATCH", headers, 200, path_parameters=ref,
           body={"starts_at": (starts + dt.timedelta(hours=1)).isoformat()},
           media_type="application/json")
    _check(app, "/api/campaigns/{campaign_id}/preview", "GET", headers, 200,
           path_parameters={"campaign_id": campaign["id"]})
    _check(app, "/api/appointments/{reference}", "DELETE", headers, 200, path_parameters=ref)

    who = {"tenant_id": tenant.id}
    _check(app, "/internal/tenants/{tenant_id}/next-collection", "GET", admin, 200,
           path_parameters=who, query={"phone": NUMBER})
    _check(app, "/internal/tenants/{tenant_id}/subscribers", "GET", admin, 200,
           path_parameters=who, query={"phone": NUMBER})


def test_inbound_and_open311_answer_as_documented(fuzz_platform, tenant_headers):
    platform, tenant = fuzz_platform
    app, headers = platform.inbound.create_app(), tenant_headers
    slug = {"jurisdiction_id": "fuzz"}
    with platform.inbound.runtime.db.transaction() as session:
        session.execute(sa.delete(LanguagePreference).where(
            LanguagePreference.tenant_id == tenant.id))
        session.add(LanguagePreference(tenant_id=tenant.id, phone=NUMBER, language="cy",
                                       source="sms"))
    made = {}
    for ext in ("json", "xml"):
        made[ext] = _check(app, "/open311/v2/requests.{ext}", "POST", {}, 201,
                           path_parameters={"ext": ext},
                           body={**slug, "api_key": tenant.api_key,
                                 "service_code": "question", "lat": "51.48", "long": "-3.18",
                                 "description": "Pryd mae'r biniau?", "email": "a@example.com"},
                           media_type="application/x-www-form-urlencoded")
    reference = made["json"].json()[0]["service_request_id"]
    for ext in ("json", "xml"):
        e = {"ext": ext}
        _check(app, "/open311/discovery.{ext}", "GET", {}, 200, path_parameters=e)
        _check(app, "/open311/v2/services.{ext}", "GET", {}, 200, path_parameters=e, query=slug)
        _check(app, "/open311/v2/services/{code}.{ext}", "GET", {}, 200,
               path_parameters={**e, "code": "missed_collection"}, query=slug)
        _check(app, "/open311/v2/requests.{ext}", "GET", {}, 200, path_parameters=e,
               query={**slug, "api_key": tenant.api_key})
        _check(app, "/open311/v2/requests/{ident}.{ext}", "GET", {}, 200,
               path_parameters={**e, "ident": reference}, query=slug)
        _check(app, "/open311/v2/requests/{ident}.{ext}", "GET", {}, 404,
               path_parameters={**e, "ident": "HYS-NOPE00"}, query=slug)
        _check(app, "/open311/v2/requests.{ext}", "POST", {}, 403, path_parameters=e,
               body={**slug, "api_key": "wrong", "service_code": "question"},
               media_type="application/x-www-form-urlencoded")
    with platform.inbound.runtime.db.read() as session:
        row = session.scalars(sa.select(ServiceRequest).where(
            ServiceRequest.reference == reference)).one()
    _check(app, "/open311/v2/tokens/{token}.{ext}", "GET", {}, 200,
           path_parameters={"ext": "json", "token": row.token}, query=slug)

    _check(app, "/api/service-requests", "GET", headers, 200)
    _check(app, "/api/service-requests/{ident}", "GET", headers, 200,
           path_parameters={"ident": reference})
    _check(app, "/api/service-requests/{ident}", "PATCH", headers, 200,
           path_parameters={"ident": reference},
           body={"status": "closed", "status_notes": "Wedi'i ateb"},
           media_type="application/json")
    _check(app, "/api/language-preferences", "GET", headers, 200)

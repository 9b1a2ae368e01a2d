"""/openapi.json: a valid OpenAPI 3 document describing every /v2 and /api route."""
from __future__ import annotations

import re

from openapi_spec_validator import validate


def spec(client) -> dict:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.get_json()


def test_the_document_is_valid_openapi_3(client):
    document = spec(client)
    assert document["openapi"].startswith("3.")
    validate(document)


def test_every_v2_and_native_route_and_method_is_described(client):
    paths = spec(client)["paths"]
    missing = []
    for rule in client.application.url_map.iter_rules():
        if not rule.rule.startswith(("/v2/", "/api/")):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_every_operation_says_what_it_answers(client):
    for path, operations in spec(client)["paths"].items():
        if not path.startswith(("/v2/", "/api/")):
            continue
        for method, op in operations.items():
            if method == "parameters":
                continue
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok or method == "post" and path.endswith("/letter"), f"{method} {path}"
            for code in ok:
                if code != "204":
                    assert "content" in op["responses"][code], f"{method} {path} {code}"


def test_the_response_schemas_keep_every_field_the_client_reads(client):
    schemas = spec(client)["components"]["schemas"]
    notification = schemas["NotificationResponse"]["properties"]
    assert {"id", "reference", "email_address", "phone_number", "type", "status", "template",
            "body", "subject", "created_at", "sent_at", "completed_at",
            "scheduled_for"} <= set(notification)
    assert {"id", "name", "type", "created_at", "updated_at", "created_by", "version", "body",
            "subject", "personalisation"} <= set(schemas["TemplateV2Response"]["properties"])
    assert {"id", "created_at", "service_id", "notify_number", "user_number", "content"} <= \
        set(schemas["ReceivedTextResponse"]["properties"])
    assert {"id", "content", "uri", "template", "reference", "scheduled_for"} <= \
        set(schemas["SmsResponse"]["properties"])

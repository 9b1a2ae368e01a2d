"""schemathesis against each service's own OpenAPI document, in-process over WSGI.

For every documented operation, hypothesis generates requests from the schema
(valid and invalid) and sends them with a valid tenant token (the admin token
for /admin and /internal).  Checked: never a 5xx, and every response matches
the schema (status code documented, body conforming, Content-Type declared).
Examples are bounded (``MAX_EXAMPLES`` per operation) so the tier stays fast.
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from notifications_python_client.authentication import create_jwt_token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = int(os.environ.get("HYSBYS_FUZZ_EXAMPLES", "12"))
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _schema(fuzz_platform, service: str):
    platform, _tenant = fuzz_platform
    app = getattr(platform, service).create_app()
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def _headers(fuzz_platform, path: str) -> dict:
    platform, tenant = fuzz_platform
    if path.startswith(("/admin", "/internal", "/ops")):
        return {"Authorization": f"Bearer {platform.settings.admin_token}"}
    key = tenant.api_key
    return {"Authorization": "Bearer " + create_jwt_token(key[-36:], key[-73:-37])}


def _fuzz(schema, fuzz_platform, checks) -> list[str]:
    """Run every operation's generated cases; the failures, one line each."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        _fuzz_operation(result.ok(), fuzz_platform, checks, failures)
    return failures


def _fuzz_operation(operation, fuzz_platform, checks, failures: list[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(headers=_headers(fuzz_platform, case.path))
        try:
            case.validate_response(response, checks=checks)
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            for failure in getattr(exc, "exceptions", [exc]):
                title = getattr(failure, "title", None) or str(failure).strip().splitlines()[0]
                failures.append(f"{operation.label}: {title} [{response.status_code}] "
                                f"{response.text[:160]!r}")

    run()


@pytest.mark.parametrize("service", ["notify", "inbound", "scheduler"])
def test_no_generated_request_gets_a_server_error(fuzz_platform, service):
    failures = _fuzz(_schema(fuzz_platform, service), fuzz_platform, [not_a_server_error])
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(sorted(set(failures))[:40])


@pytest.mark.parametrize("service", ["notify", "inbound", "scheduler"])
def test_every_answer_to_a_generated_request_is_the_one_the_openapi_document_promises(
        fuzz_platform, service):
    """Fails today (docs/reliability.md, finding F6): the documents still describe
    flask-smorest's default error body, not the GOV.UK Notify error body every
    endpoint answers; and /api/rounds/changes answers fields its schema lacks."""
    failures = _fuzz(_schema(fuzz_platform, service), fuzz_platform, CONFORMANCE)
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(sorted(set(failures))[:40])

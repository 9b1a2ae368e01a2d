"""What every service's Flask app has: health, readiness, metrics, errors, OpenAPI.

:func:`base_app` is called by each service's ``create_app``; it builds nothing
at import time and reaches no global: the runtime is passed in.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from shared import logs
from shared.errors import ApiError, errors_body, flatten_messages
from shared.metrics import METRICS

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024   # 2 MiB for JSON; CSV uploads raise it per endpoint


def base_app(runtime: Runtime, title: str, description: str) -> tuple[Flask, Api]:
    service = runtime.service
    app = Flask(f"hysbys.{service}")
    app.config.update(
        API_TITLE=title,
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {"securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "GOV.UK Notify-style JWT: iss = tenant id, HS256 with the "
                               "API key's secret, iat within 30 seconds"}}},
        },
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["hysbys.runtime"] = runtime
    api = Api(app)

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        cid = request.headers.get("X-Correlation-Id") or logs.new_correlation_id()
        g.correlation_id = cid[:64]
        g.cid_token = logs.correlation_id.set(g.correlation_id)

    @app.after_request
    def _finish(response: Response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        METRICS.http_latency.labels(service, request.method, route, response.status_code
                                    ).observe(elapsed)
        response.headers["X-Correlation-Id"] = g.get("correlation_id", "")
        return response

    @app.teardown_request
    def _reset(_exc):
        token = g.pop("cid_token", None)
        if token is not None:
            logs.correlation_id.reset(token)
        logs.tenant_id.set(None)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        resp = jsonify(exc.to_body())
        resp.status_code = exc.status_code
        resp.headers.update(exc.headers)
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        if code == 422 or (code == 400 and messages):
            # webargs' field errors: {"json": {"field": ["msg"]}} -> "field msg"
            flat: list[str] = []
            for location, errors in (messages or {}).items():
                flat.extend(flatten_messages(errors) if isinstance(errors, dict)
                            else flatten_messages({location: errors}))
            return jsonify(errors_body(400, "ValidationError", flat or ["Invalid request"])), 400
        names = {401: "AuthError", 403: "AuthError", 404: "NoResultFound",
                 405: "MethodNotAllowedError", 413: "RequestTooLargeError",
                 415: "UnsupportedMediaTypeError", 429: "RateLimitError"}
        message = {404: "No result found",
                   413: f"Request body too large: the limit is {app.config['MAX_CONTENT_LENGTH']} bytes",
                   }.get(code, exc.description or exc.name)
        return jsonify(errors_body(code, names.get(code, "BadRequestError"), [message])), code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(errors_body(500, "Exception", ["Internal server error"])), 500

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz():
        checks = runtime.readiness()
        ok = all(v == "ok" for v in checks.values())
        return jsonify(status="ok" if ok else "unavailable", service=service,
                       checks=checks), (200 if ok else 503)

    @app.get("/metrics")
    def metrics():
        runtime.refresh_gauges()
        body, content_type = METRICS.exposition()
        return Response(body, content_type=content_type)

    return app, api


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["hysbys.runtime"]


def json_body() -> dict:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    if not request.is_json:
        raise ApiError("Content-Type must be application/json", 415, "UnsupportedMediaTypeError")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("Invalid JSON supplied in POST data", 400, "BadRequestError")
    if not isinstance(body, dict):
        raise ApiError("Request body must be a JSON object", 400, "ValidationError")
    return body


def authenticated(runtime: Runtime):
    """The calling tenant's :class:`~shared.tenancy.Caller` (401/403 as Notify does)."""
    from shared.tenancy import authenticate

    caller = g.get("caller")
    if caller is None:
        with runtime.db.read() as session:
            caller = authenticate(session, runtime.box, request.headers.get("Authorization"))
        g.caller = caller
        logs.tenant_id.set(caller.tenant_id)
    return caller


def require_admin(runtime: Runtime) -> None:
    """Platform operator calls carry ``Authorization: Bearer $HYSBYS_ADMIN_TOKEN``."""
    from shared.crypto import constant_time_equals
    from shared.errors import AuthError
    from shared.tenancy import bearer_token

    token = bearer_token(request.headers.get("Authorization"))
    if not constant_time_equals(token, runtime.settings.admin_token):
        raise AuthError("Invalid token: not the platform admin token", 403)


def iso(ts) -> str | None:
    """GOV.UK Notify's timestamp format, ``%Y-%m-%dT%H:%M:%S.%fZ``."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if ts else None

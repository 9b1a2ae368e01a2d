"""What every service's Flask app has: health, readiness, metrics, errors, OpenAPI.

:func:`base_app` is called by each service's ``create_app``; it builds nothing
at import time and reaches no global: the runtime is passed in.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import sqlalchemy.exc as sa_exc
from apispec import BasePlugin
from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from shared import logs, tracing
from shared.errors import ApiError, errors_body, flatten_messages
from shared.metrics import METRICS

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024   # 2 MiB for JSON; CSV uploads raise it per endpoint
STORE_UNAVAILABLE = ("The database cannot store this request now (disk full, read-only or "
                     "unreachable); nothing was saved")
RETRY_AFTER_SECONDS = 30


class NotifyErrorItem(Schema):
    error = fields.String(required=True, metadata={"example": "ValidationError"})
    message = fields.String(required=True, metadata={"example": "phone_number is required"})


class NotifyError(Schema):
    """Every 4xx/5xx body, as GOV.UK Notify writes it (:mod:`shared.errors`)."""

    status_code = fields.Integer(required=True, metadata={"example": 400})
    errors = fields.List(fields.Nested(NotifyErrorItem), required=True)


class _InvalidArgumentsAre400(BasePlugin):
    """webargs refuses bad arguments with 422; :func:`base_app` answers them 400 as Notify
    does, so the document says 400 (Bad Request) where flask-smorest wrote 422."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not responses:
                continue
            for code in (422, "422"):
                if code in responses:
                    del responses[code]
                    if 400 not in responses and "400" not in responses:
                        responses[400] = "BAD_REQUEST"


class NotifyApi(Api):
    """flask-smorest's Api documenting the GOV.UK Notify error body as every operation's
    ``default`` response (and as the body of each named error status)."""

    ERROR_SCHEMA = NotifyError

    def __init__(self, app=None, *, spec_kwargs=None, **kwargs):
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()),
                                        _InvalidArgumentsAre400()]
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)


def store_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the store cannot take writes (or be reached) now:
    disk full, read-only file or file system, a lost connection, an exhausted pool —
    as opposed to a bug (an integrity or programming error), which stays a 500."""
    if isinstance(exc, sa_exc.TimeoutError):          # the pool had no connection to give
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return (isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
                or bool(exc.connection_invalidated))
    return False


def database_cause(exc: BaseException) -> str:
    """The driver's own words, first line only: never the statement or its parameters
    (which carry phone numbers and message bodies)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    text = (str(orig).strip().splitlines() or [""])[0][:200]
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


def base_app(runtime: Runtime, title: str, description: str) -> tuple[Flask, NotifyApi]:
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
    api = NotifyApi(app)

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        cid = request.headers.get("X-Correlation-Id") or logs.new_correlation_id()
        g.correlation_id = cid[:64]
        g.cid_token = logs.correlation_id.set(g.correlation_id)

    tracing.instrument_app(app, service)

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

    @app.errorhandler(sa_exc.SQLAlchemyError)
    def _database_error(exc: sa_exc.SQLAlchemyError):
        if not store_unavailable(exc):
            return _unexpected(exc)
        # Every unit of work is `with db.transaction()`: it has rolled back by now and its
        # connection is back in the pool (reset on return), so nothing is half-written.
        # Logged without the statement or its parameters: they carry personal data.
        route = request.url_rule.rule if request.url_rule else "unmatched"
        log.error("database cannot store %s %s: %s", request.method, route,
                  database_cause(exc))
        resp = jsonify(errors_body(503, "ServiceUnavailableError", [STORE_UNAVAILABLE]))
        resp.status_code = 503
        resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return resp

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz():
        checks = runtime.readiness()
        status, code = readiness_status(checks)
        return jsonify(status=status, service=service, checks=checks), code

    @app.get("/metrics")
    def metrics():
        runtime.refresh_gauges()
        body, content_type = METRICS.exposition()
        return Response(body, content_type=content_type)

    return app, api


def readiness_status(checks: dict[str, str], *, broker_required: bool = False
                     ) -> tuple[str, int]:
    """``/readyz``'s answer: ``("ok", 200)``, ``("degraded", 200)`` or ``("unavailable", 503)``.

    An API needs only its database to take a request: what it publishes waits in the
    transactional outbox until the broker is back.  So a broker outage leaves it ready
    (taken out of its Service, every replica at once, it would refuse sends it can keep)
    and says ``degraded``.  A worker, whose work is the broker's messages, passes
    ``broker_required``."""
    if checks.get("database") != "ok":
        return "unavailable", 503
    if all(value == "ok" for value in checks.values()):
        return "ok", 200
    if broker_required:
        return "unavailable", 503
    return "degraded", 200


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


def authenticated(runtime: Runtime, session=None):
    """The calling tenant's :class:`~shared.tenancy.Caller` (401/403 as Notify does).

    ``session``: authenticate inside the caller's open transaction (one connection and
    no second look-up of the tenant, for a caller that goes on to write)."""
    from shared.tenancy import ReplicaMiss, authenticate

    caller = g.get("caller")
    if caller is None:
        header = request.headers.get("Authorization")
        if session is not None:
            caller = authenticate(session, runtime.box, header, runtime.tenant_cache)
        else:
            try:
                with runtime.db.read() as own:
                    caller = authenticate(own, runtime.box, header, runtime.tenant_cache)
            except ReplicaMiss as miss:
                # a replica (inbound, scheduler) that does not know the tenant or key yet
                # asks the owner once, then answers as the refreshed replica says
                source = runtime.tenant_source
                if source is None or not source.refresh(runtime.db, miss.tenant_id):
                    raise
                with runtime.db.read() as own:
                    caller = authenticate(own, runtime.box, header, runtime.tenant_cache)
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

"""Service requests as Open311 GeoReport v2, at ``/open311/v2/``, exactly as the standard says.

``services.{fmt}``, ``services/{code}.{fmt}``, ``requests.{fmt}`` (GET and POST),
``requests/{id}.{fmt}`` and ``tokens/{token}.{fmt}``, each in ``xml`` (required
by the standard) and ``json`` (top-level arrays; the service definition is the
one object); the Service Discovery document is ``/open311/discovery.{fmt}``.
``jurisdiction_id`` is the tenant's slug and is required: one endpoint serves
every tenant.  Errors are ``[{"code", "description"}]`` (or
``<errors><error>``) with the standard's status: 400 for a missing or bad
argument, 403 for a missing or wrong ``api_key``, 404 for an unknown
jurisdiction, service code, request or token.

``service_request_id`` is the request's ``HYS-XXXXXX`` reference, the number
the citizen was texted.  GETs need no key, as the standard says; but a reply
is a citizen's own words, so a public read shows only what says what a request
is and where it stands (``open311_format.PUBLIC_FIELDS``): ``status_notes`` is
the notes the team set as public, never its own notes or answers; the
description, address, location and media only to a caller who passes the
tenant's ``api_key``.  Service types are the tenant's own (``catalogue.py``).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import request
from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException

from services.inbound import catalogue, keywords, open311_post, service_requests, vocabulary
from services.inbound import open311_format as fmt
from services.inbound.models import ServiceRequest
from services.inbound.open311_format import Open311Error
from shared.errors import ApiError
from shared.runtime import Runtime
from shared.tenancy import Tenant, tenant_by_slug

WINDOW = dt.timedelta(days=90)
MAX_REQUESTS = 1000


def tenant_for(runtime: Runtime, args) -> Tenant:
    slug = (args.get("jurisdiction_id") or "").strip()
    if not slug:
        raise Open311Error(400, "jurisdiction_id was not provided")
    with runtime.db.read() as session:
        tenant = tenant_by_slug(session, slug)
    if tenant is None or not tenant.active:
        raise Open311Error(404, f"jurisdiction_id {slug!r} was not found")
    return tenant


def blueprint(runtime: Runtime) -> Blueprint:
    blp = Blueprint("open311", __name__, url_prefix="/open311",
                    description="Service requests as Open311 GeoReport v2 (jurisdiction_id = "
                                "the tenant's slug)")

    @blp.errorhandler(Open311Error)
    def _open311_error(exc: Open311Error):
        return fmt.errors(fmt.requested_format(), exc.code, [exc.description])

    @blp.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return fmt.errors(fmt.requested_format(), exc.status_code, [exc.message])

    @blp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return fmt.errors(fmt.requested_format(), exc.code or 400,
                          [exc.description or exc.name])

    @blp.route("/discovery.<ext>", methods=["GET"])
    @blp.doc(responses=fmt.responses(200, fmt.DISCOVERY_DOC, "The Service Discovery document", (400,)))
    def discovery(ext: str):
        """Where the GeoReport v2 endpoint is and what it speaks (Open311 Service Discovery)"""
        fmt.check(ext)
        return fmt.discovery(ext, runtime.settings.public_url("inbound") + "/open311/v2")

    @blp.route("/v2/services.<ext>", methods=["GET"])
    @blp.doc(parameters=[fmt.JURISDICTION])
    @blp.doc(responses=fmt.responses(200, fmt.SERVICES_DOC, "The service list", (400, 404)))
    def services(ext: str):
        """The service types (GET Service List)"""
        fmt.check(ext)
        tenant = tenant_for(runtime, request.args)
        with runtime.db.read() as session:
            types = catalogue.for_tenant(session, tenant.id)
            words = vocabulary.in_force(vocabulary.configured(session, tenant.id))
        missed = [p for lang in ("cy", "en") for p in words[keywords.MISSED].get(lang, [])]
        return fmt.render(ext, "services", "service", [
            fmt.service_json(s, missed if s.code == catalogue.MISSED_COLLECTION else [])
            for s in types.values()])

    @blp.route("/v2/services/<code>.<ext>", methods=["GET"])
    @blp.doc(parameters=[fmt.JURISDICTION])
    @blp.doc(responses=fmt.responses(200, fmt.DEFINITION_DOC, "The service definition", (400, 404)))
    def service_definition(code: str, ext: str):
        """A service type's attributes (GET Service Definition)"""
        fmt.check(ext)
        tenant = tenant_for(runtime, request.args)
        with runtime.db.read() as session:
            service = catalogue.for_tenant(session, tenant.id).get(code)
        if service is None:
            raise Open311Error(404, f"service_code {code!r} was not found")
        return fmt.definition(ext, service)

    @blp.route("/v2/requests.<ext>", methods=["GET"])
    @blp.doc(parameters=[fmt.JURISDICTION])
    @blp.doc(responses=fmt.responses(200, fmt.REQUESTS_DOC, "The requests", (400, 404)))
    def list_requests(ext: str):
        """Requests made in a window of at most 90 days, newest first (GET Service Requests)"""
        fmt.check(ext)
        tenant = tenant_for(runtime, request.args)
        full = open311_post.key_matches(runtime, tenant, request.args.get("api_key"))
        with runtime.db.read() as session:
            rows = _query(session, tenant.id, request.args)
            types = catalogue.for_tenant(session, tenant.id)
        return fmt.render(ext, "service_requests", "request",
                          [fmt.request_json(r, full, types) for r in rows])

    @blp.route("/v2/requests.<ext>", methods=["POST"])
    @blp.doc(requestBody=fmt.CREATE_FORM_DOC)
    @blp.doc(responses=fmt.responses(201, fmt.CREATED_DOC, "The request made", (400, 403, 404, 413)))
    def create_request(ext: str):
        """Make a request: form-encoded, with the tenant's api_key (POST Service Request)"""
        fmt.check(ext)
        tenant = tenant_for(runtime, request.form)
        created = open311_post.create(runtime, tenant, request)
        runtime.relay.nudge.set()
        return fmt.render(ext, "service_requests", "request", [
            {"service_request_id": created.reference, "service_notice": created.service_notice,
             "account_id": created.account_id}], status=201)

    @blp.route("/v2/requests/<ident>.<ext>", methods=["GET"])
    @blp.doc(parameters=[fmt.JURISDICTION])
    @blp.doc(responses=fmt.responses(200, fmt.REQUESTS_DOC, "The request (a list of one)", (400, 404)))
    def get_request(ident: str, ext: str):
        """One request (GET Service Request)"""
        fmt.check(ext)
        tenant = tenant_for(runtime, request.args)
        full = open311_post.key_matches(runtime, tenant, request.args.get("api_key"))
        with runtime.db.read() as session:
            rows = service_requests.by_references(session, tenant.id, [ident])
            types = catalogue.for_tenant(session, tenant.id)
        if not rows:
            raise Open311Error(404, f"service_request_id {ident!r} was not found")
        return fmt.render(ext, "service_requests", "request",
                          [fmt.request_json(rows[0], full, types)])

    @blp.route("/v2/tokens/<token>.<ext>", methods=["GET"])
    @blp.doc(parameters=[fmt.JURISDICTION])
    @blp.doc(responses=fmt.responses(200, fmt.TOKEN_DOC, "The request the token stands for", (400, 404)))
    def token(token: str, ext: str):
        """The request a token stands for (GET service_request_id from a token)"""
        fmt.check(ext)
        tenant = tenant_for(runtime, request.args)
        with runtime.db.read() as session:
            row = session.scalars(sa.select(ServiceRequest).where(
                ServiceRequest.tenant_id == tenant.id, ServiceRequest.token == token)).first()
        if row is None:
            raise Open311Error(404, f"token {token!r} was not found")
        return fmt.render(ext, "service_requests", "request",
                          [{"service_request_id": row.reference, "token": row.token}])

    return blp


def _query(session, tenant_id: str, args) -> list[ServiceRequest]:
    ids = fmt.comma_list(args.get("service_request_id"))
    if ids:
        # "This overrides all other arguments."
        return service_requests.by_references(session, tenant_id, ids)[:MAX_REQUESTS]
    statuses = fmt.comma_list(args.get("status"))
    for status in statuses:
        if status not in ("open", "closed"):
            raise Open311Error(400, f"status {status!r} must be open or closed")
    start, end = window(fmt.w3c(args, "start_date"), fmt.w3c(args, "end_date"))
    return service_requests.in_window(session, tenant_id, start=start, end=end,
                                      service_codes=fmt.comma_list(args.get("service_code")),
                                      statuses=statuses, limit=MAX_REQUESTS)


def window(start: dt.datetime | None, end: dt.datetime | None,
           now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The standard's window: the most recent 90 days by default, never more than 90."""
    now = now or dt.datetime.now(dt.UTC)
    if start is None and end is None:
        return now - WINDOW, now
    if start is None:
        return end - WINDOW, end
    if end is None:
        return start, start + WINDOW
    if end < start:
        raise Open311Error(400, "end_date must not be before start_date")
    if end - start > WINDOW:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days")
    return start, end

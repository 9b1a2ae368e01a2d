"""Platform operators' API: onboarding tenants and managing their keys.

Every call needs ``Authorization: Bearer $HYSBYS_ADMIN_TOKEN``.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Response, g
from flask_smorest import Blueprint

from services.notify import schemas, tenants
from services.notify.api_v2 import require_json_body
from services.notify.models import Template
from services.notify.templates import fragment_counts
from shared.errors import NotFound, ValidationError
from shared.http import require_admin
from shared.runtime import Runtime
from shared.tenancy import ApiKey, Tenant, snapshot_event


def tenant_json(runtime: Runtime, t: Tenant) -> dict:
    return {"id": t.id, "slug": t.slug, "name": t.name, "default_language": t.default_language,
            "config": t.config, "providers_configured": tenants.providers_configured(runtime.box, t),
            "active": t.active, "revision": t.revision}


def blueprint(runtime: Runtime) -> Blueprint:
    blp = Blueprint("admin", __name__, url_prefix="/admin",
                    description="Platform operators: tenants and API keys")

    @blp.before_request
    def _admin_only():
        require_admin(runtime)
        require_json_body()

    @blp.route("/tenants", methods=["POST"])
    @blp.arguments(schemas.TenantCreate)
    @blp.response(201, schemas.TenantCreated)
    @blp.doc(security=[{"bearer": []}])
    def create(args):
        """Onboard a council or health board; answers its live and test API keys"""
        with runtime.db.transaction() as session:
            created = tenants.create_tenant(
                session, runtime.box, name=args["name"], slug=args["slug"],
                default_language=args["default_language"], config=args.get("config") or None,
                cid=g.get("correlation_id"))
        runtime.relay.nudge.set()
        return created.as_dict()

    @blp.route("/tenants", methods=["GET"])
    @blp.response(200, schemas.TenantResponse(many=True))
    @blp.doc(security=[{"bearer": []}])
    def list_all():
        """Every tenant"""
        with runtime.db.read() as session:
            rows = session.scalars(sa.select(Tenant).order_by(Tenant.slug)).all()
        return [tenant_json(runtime, t) for t in rows]

    @blp.route("/tenants/<tenant_id>", methods=["GET"])
    @blp.response(200, schemas.TenantResponse)
    @blp.doc(security=[{"bearer": []}])
    def get_one(tenant_id: str):
        """One tenant (credentials are never returned, only which providers have them)"""
        with runtime.db.read() as session:
            return tenant_json(runtime, tenants.get_tenant(session, tenant_id))

    @blp.route("/tenants/<tenant_id>", methods=["PATCH"])
    @blp.arguments(schemas.TenantPatch)
    @blp.response(200, schemas.TenantResponse)
    @blp.doc(security=[{"bearer": []}])
    def patch(args, tenant_id: str):
        """Set inbound numbers, providers and credentials, quiet hours, limits, webhook"""
        if args.get("provider_credentials"):
            from services.notify.providers.choice import credential_problems

            problems = credential_problems(args["provider_credentials"], runtime.settings)
            if problems:   # a 400 naming the missing field now, not failed sends later
                raise ValidationError("; ".join(problems))
        with runtime.db.transaction() as session:
            t = tenants.update_tenant(session, runtime.box, tenant_id, args,
                                      cid=g.get("correlation_id"))
            body = tenant_json(runtime, t)
        runtime.relay.nudge.set()
        return body

    @blp.route("/tenants/<tenant_id>/keys", methods=["POST"])
    @blp.arguments(schemas.KeyCreate)
    @blp.response(201, schemas.KeyCreated)
    @blp.doc(security=[{"bearer": []}])
    def create_key(args, tenant_id: str):
        """A new API key; the secret is shown once"""
        with runtime.db.transaction() as session:
            key_id, api_key = tenants.create_key(session, runtime.box, tenant_id, args["name"],
                                                 args["key_type"], args["scopes"],
                                                 cid=g.get("correlation_id"))
        runtime.relay.nudge.set()
        return {"id": key_id, "name": args["name"], "key_type": args["key_type"],
                "api_key": api_key}

    @blp.route("/tenants/<tenant_id>/keys/<key_id>", methods=["DELETE"])
    @blp.response(204)
    @blp.doc(security=[{"bearer": []}])
    def revoke(tenant_id: str, key_id: str):
        """Revoke a key: it stops working at once, in every service"""
        with runtime.db.transaction() as session:
            tenants.revoke_key(session, tenant_id, key_id, cid=g.get("correlation_id"))
        runtime.relay.nudge.set()
        return ""

    return blp


def internal_blueprint(runtime: Runtime) -> Blueprint:
    """What the other services ask notify, the owner of tenants (platform admin token)."""
    blp = Blueprint("internal", __name__, url_prefix="/internal",
                    description="Service-to-service answers (admin token)")

    @blp.route("/tenants/<tenant_id>", methods=["GET"])
    @blp.doc(security=[{"bearer": []}], responses={"200": {
        "description": "the tenant's tenant.changed event, as the replicas apply it"}})
    def tenant_snapshot(tenant_id: str):
        """A tenant's current snapshot, for a service that does not know it yet"""
        require_admin(runtime)
        with runtime.db.read() as session:
            tenant = tenants.get_tenant(session, tenant_id)
            keys = session.scalars(sa.select(ApiKey).where(ApiKey.tenant_id == tenant.id)).all()
            event = snapshot_event(tenant, list(keys), g.get("correlation_id"))
        return Response(event.to_json(), 200, mimetype="application/json")

    @blp.route("/tenants/<tenant_id>/templates/<template_id>/fragments", methods=["POST"])
    @blp.arguments(schemas.FragmentsRequest)
    @blp.response(200, schemas.FragmentsResponse)
    @blp.doc(security=[{"bearer": []}])
    def template_fragments(args, tenant_id: str, template_id: str):
        """Each language's encoding and fragment count of a tenant's template, for the
        scheduler's preview and capacity (it holds no templates)"""
        require_admin(runtime)
        with runtime.db.read() as session:
            tenant = tenants.get_tenant(session, tenant_id)
            t = session.scalars(sa.select(Template).where(
                Template.id == _uuid_or_404(template_id), Template.tenant_id == tenant.id)).first()
            if t is None:
                raise NotFound()
            return {"id": t.id, "type": t.type, "version": t.version,
                    "languages": fragment_counts(t, args.get("personalisation"))}

    return blp


def _uuid_or_404(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound() from None

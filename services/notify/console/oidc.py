"""Signing in with the council's own OpenID Connect provider (authlib, joserfc).

The authorization code flow with PKCE: the console redirects to the provider's
authorization endpoint (found from the issuer's discovery document) with a random
``state`` and ``nonce`` kept in the browser's session; on the way back it checks the
state, exchanges the code (client secret and code verifier) at the token endpoint,
and verifies the ID token: signature against the provider's JWKS, ``iss`` = the
configured issuer, ``aud`` = the client id, the ``nonce`` it sent, and not expired.

Who may sign in this way is still decided by invitations: the ID token's subject must
already be linked to a staff account of this tenant, or its verified email must be
one (the first sign-in links the subject).  Nobody gets an account or a role from the
provider alone.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from services.notify.console.models import ConsoleSettings, StaffUser

TIMEOUT = 10
SCOPE = "openid email profile"


class OidcError(Exception):
    """The provider's answer cannot be trusted (the message says why; shown to nobody)."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str

    def metadata(self) -> dict:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            meta = requests.get(url, timeout=TIMEOUT).json()
        except (requests.RequestException, ValueError) as exc:
            raise OidcError(f"cannot read {url}: {exc}") from exc
        if meta.get("issuer") != self.issuer:
            raise OidcError("the discovery document names another issuer")
        return meta

    def client(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(self.client_id, self.client_secret, scope=SCOPE,
                             redirect_uri=redirect_uri, code_challenge_method="S256")


def provider_for(session: Session, tenant_id: str) -> Provider | None:
    cs = session.get(ConsoleSettings, tenant_id)
    if cs is None or not (cs.oidc_issuer and cs.oidc_client_id and cs.oidc_client_secret):
        return None
    return Provider(cs.oidc_issuer, cs.oidc_client_id, cs.oidc_client_secret)


def start(provider: Provider, redirect_uri: str) -> tuple[str, dict]:
    """(the URL to send the browser to, what to keep in its session for the callback)."""
    meta = provider.metadata()
    verifier = generate_token(48)
    nonce = secrets.token_urlsafe(24)
    url, state = provider.client(redirect_uri).create_authorization_url(
        meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier)
    return url, {"state": state, "nonce": nonce, "verifier": verifier}


def finish(provider: Provider, redirect_uri: str, kept: dict, callback_url: str,
           state: str | None) -> dict:
    """The verified ID token's claims, or :class:`OidcError`."""
    if not kept or not state or not secrets.compare_digest(state, kept.get("state", "")):
        raise OidcError("state does not match")
    meta = provider.metadata()
    try:
        token = provider.client(redirect_uri).fetch_token(
            meta["token_endpoint"], authorization_response=callback_url,
            code_verifier=kept["verifier"], state=kept["state"])
        keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=TIMEOUT).json())
    except Exception as exc:  # noqa: BLE001 - any failure of the exchange refuses the sign-in
        raise OidcError(f"token exchange failed: {type(exc).__name__}") from exc
    id_token = token.get("id_token")
    if not id_token:
        raise OidcError("no id_token")
    try:
        decoded = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            nonce={"essential": True, "value": kept["nonce"]},
            sub={"essential": True}, exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise OidcError(f"id_token refused: {exc}") from exc
    return decoded.claims


def match(session: Session, tenant_id: str, claims: dict) -> StaffUser | None:
    """The tenant's staff account these claims belong to (linking the subject the first time)."""
    user = session.scalars(sa.select(StaffUser).where(
        StaffUser.tenant_id == tenant_id, StaffUser.oidc_subject == str(claims["sub"]))).first()
    if user is not None:
        return user
    email = str(claims.get("email") or "").strip().lower()
    if not email or claims.get("email_verified") is not True:
        return None
    user = session.scalars(sa.select(StaffUser).where(
        StaffUser.tenant_id == tenant_id, StaffUser.email == email)).first()
    if user is not None and user.oidc_subject is None:
        user.oidc_subject = str(claims["sub"])
        return user
    return None

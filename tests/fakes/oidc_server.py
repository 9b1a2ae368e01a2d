"""A tiny OpenID Connect provider on 127.0.0.1, standing in for a council's (Keycloak,
Entra ID…): discovery, an authorization endpoint that approves at once as the
configured person, a token endpoint that checks the client secret, the code and the
PKCE verifier, and a JWKS.  ID tokens are signed RS256 with a key made per server;
``forge``/``wrong_nonce``/``expired`` make the next token untrustworthy, for the tests
that it is refused."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


class FakeOidcProvider:
    def __init__(self, client_id: str = "hysbys-console", client_secret: str = "s3cret-value"):
        self.client_id, self.client_secret = client_id, client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.person = {"sub": "user-1", "email": "someone@example.gov.uk", "email_verified": True}
        self.trouble: str | None = None          # "forge" | "wrong_nonce" | "expired"
        self.codes: dict[str, dict] = {}
        self.problems: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": nonce, **self.person}
        if self.trouble == "wrong_nonce":
            claims["nonce"] = "not-the-nonce"
        if self.trouble == "expired":
            claims["iat"], claims["exp"] = now - 900, now - 600
        key = self.other_key if self.trouble == "forge" else self.key
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, {
                        "issuer": provider.issuer,
                        "authorization_endpoint": provider.issuer + "/authorize",
                        "token_endpoint": provider.issuer + "/token",
                        "jwks_uri": provider.issuer + "/jwks",
                        "response_types_supported": ["code"],
                        "id_token_signing_alg_values_supported": ["RS256"]})
                if url.path == "/jwks":
                    return self._json(200, {"keys": [provider.key.as_dict(private=False)]})
                if url.path == "/authorize":
                    for name in ("client_id", "redirect_uri", "state", "nonce", "code_challenge"):
                        if not q.get(name):
                            provider.problems.append(f"authorize without {name}")
                    if q.get("code_challenge_method") != "S256":
                        provider.problems.append("authorize without PKCE S256")
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = q
                    self.send_response(302)
                    self.send_header("Location", q["redirect_uri"] + "?" + urlencode(
                        {"code": code, "state": q["state"]}))
                    self.end_headers()
                    return None
                return self._json(404, {})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                else:
                    cid, secret = form.get("client_id", ""), form.get("client_secret", "")
                if (cid, secret) != (provider.client_id, provider.client_secret):
                    return self._json(401, {"error": "invalid_client"})
                asked = provider.codes.pop(form.get("code", ""), None)
                if asked is None or form.get("redirect_uri") != asked["redirect_uri"]:
                    return self._json(400, {"error": "invalid_grant"})
                challenge = base64.urlsafe_b64encode(hashlib.sha256(
                    form.get("code_verifier", "").encode()).digest()).rstrip(b"=").decode()
                if challenge != asked["code_challenge"]:
                    return self._json(400, {"error": "invalid_grant", "detail": "PKCE"})
                return self._json(200, {"access_token": secrets.token_urlsafe(16),
                                        "token_type": "Bearer", "expires_in": 300,
                                        "id_token": provider.id_token(asked["nonce"])})

        return Handler

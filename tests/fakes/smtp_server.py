"""A local SMTP relay (aiosmtpd) that checks AUTH and can refuse like a real one.

``FakeRelay(username, password)`` accepts mail only after AUTH with those
credentials; ``refuse_recipient("550 …")`` / ``refuse_data("451 …")`` make the
next transactions fail at RCPT or DATA.  With ``tls=True`` it offers STARTTLS
with a throwaway self-signed certificate, and :attr:`client_tls` trusts it.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class _Handler:
    received: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_answer: str | None = None
    data_answer: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_answer:
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_answer:
            return self.data_answer
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class FakeRelay:
    def __init__(self, username: str = "relay-user", password: str = "relay-pass", *, tls: bool = False):
        self.username = username
        self.password = password
        self.handler = _Handler()
        self.port = _free_port()
        self.logins: list[str] = []
        self.client_tls: ssl.SSLContext | None = None
        kwargs: dict = {}
        if tls:
            folder = Path(tempfile.mkdtemp(prefix="fake-relay-"))
            cert, key = _self_signed(folder)
            server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_tls.load_cert_chain(cert, key)
            self.client_tls = ssl.create_default_context(cafile=str(cert))
            kwargs = {"tls_context": server_tls, "require_starttls": True}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     authenticator=self._authenticate, auth_required=True,
                                     auth_require_tls=tls, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        if ok:
            self.logins.append(self.username)
        return AuthResult(success=ok, handled=False)

    @property
    def received(self) -> list[Message]:
        return self.handler.received

    def credentials(self, **extra) -> dict:
        """What a tenant PATCHes as ``provider_credentials.smtp`` to use this relay."""
        return {"host": "127.0.0.1", "port": self.port, "username": self.username,
                "password": self.password, "starttls": self.client_tls is not None,
                "from_address": "biniau@cyngor.example", **extra}

    def refuse_recipient(self, answer: str) -> None:
        self.handler.rcpt_answer = answer

    def refuse_data(self, answer: str) -> None:
        self.handler.data_answer = answer

    def __enter__(self) -> FakeRelay:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

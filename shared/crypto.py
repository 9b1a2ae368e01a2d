"""Secrets at rest: provider credentials, API key secrets, webhook secrets, bodies.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with the platform key
``HYSBYS_SECRET_KEY``.  Several keys may be given comma-separated: the first
encrypts, all decrypt, so the key can be rotated without downtime.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    def __init__(self, keys: str):
        self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
        self._keys = [k.strip().encode() for k in keys.split(",") if k.strip()]

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with HYSBYS_SECRET_KEY") from exc

    def encrypt_json(self, value: Any) -> str:
        return self.encrypt(json.dumps(value, separators=(",", ":")))

    def decrypt_json(self, token: str | None) -> Any:
        return json.loads(self.decrypt(token)) if token else {}

    def derived(self, purpose: str) -> list[str]:
        """A secret for ``purpose`` made from each platform key (HMAC-SHA256, hex): the
        first signs, every one verifies, so a key rotation keeps what was signed working.
        Nothing derived is stored: every service holding the platform key can make it."""
        return [hmac.new(k, purpose.encode(), hashlib.sha256).hexdigest() for k in self._keys]


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())

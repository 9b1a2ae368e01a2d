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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# HKDF's "info": what the derived key is for, so it can never equal another key made
# from the same secret (Fernet's own signing and encryption halves are the secret itself)
LOOKUP_KEY_INFO = b"hysbys personal data look-up hash v1"


class SecretBox:
    def __init__(self, keys: str):
        listed = [k.strip() for k in keys.split(",") if k.strip()]
        self._fernet = MultiFernet([Fernet(k.encode()) for k in listed])
        # The look-up key (keyed hashes of phone numbers and email addresses beside their
        # ciphertext) comes from the *last* key listed: a rotation puts the new key first,
        # so every stored hash still matches (docs/personal-data.md).
        self._lookup_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                info=LOOKUP_KEY_INFO).derive(listed[-1].encode())
        self._keys = [k.encode() for k in listed]

    def lookup_digest(self, message: bytes) -> str:
        """HMAC-SHA256 of ``message`` with the look-up key (hex): see shared.pii."""
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()

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

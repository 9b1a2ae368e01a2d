"""Staff sign-in: argon2 passwords, server-side sessions, lockout, invitations.

* Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher`` defaults, the
  RFC 9106 low-memory profile), re-hashed at sign-in when those defaults change.
* A signed-in browser carries a random session id in Flask's signed session cookie;
  the database keeps only its SHA-256 (``staff_sessions``).  Signing in always issues
  a new id and clears whatever the browser's session held before (its CSRF token
  too), so a session id planted before sign-in is worth nothing (no fixation).
  Signing out, removing the person or changing their role deletes their rows: the
  cookie stops working at once, on every device.
* ``LOCK_AFTER`` wrong passwords in a row lock the account for ``LOCK_FOR``; the
  count resets at a successful sign-in.  An unknown address costs the same argon2
  verification as a known one, and gets the same answer as a wrong password.
* An invitation's token is 32 random bytes, sent once by email; only its SHA-256 is
  stored, and it works once, for ``INVITE_FOR``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from services.notify.console.models import ROLES, StaffInvite, StaffSession, StaffUser

LOCK_AFTER = 5
LOCK_FOR = dt.timedelta(minutes=15)
SESSION_IDLE = dt.timedelta(hours=8)       # a working day without a request ends it
SESSION_MAX = dt.timedelta(hours=24)
INVITE_FOR = dt.timedelta(days=3)
MIN_PASSWORD = 12

HASHER = PasswordHasher()
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def password_problem(password: str, email: str = "") -> str | None:
    """Why a new password is refused (NCSC: length over complexity), or None."""
    if len(password) < MIN_PASSWORD:
        return "short"
    if email and password.strip().lower() == email.strip().lower():
        return "email"
    return None


@dataclass(frozen=True)
class SignIn:
    user: StaffUser | None
    outcome: str            # "ok", "wrong", "locked"
    locked_until: dt.datetime | None = None


def check_password(session: Session, email: str, password: str, now: dt.datetime) -> SignIn:
    """Check an email and password, counting failures; the caller's transaction commits."""
    user = session.scalars(sa.select(StaffUser).where(
        StaffUser.email == email.strip().lower()).with_for_update()).first()
    if user is None or user.password_hash is None:
        _verify(_DUMMY_HASH, password)         # the same cost as a real check
        return SignIn(None, "wrong")
    if user.locked_until is not None and user.locked_until > now:
        return SignIn(user, "locked", user.locked_until)
    if not _verify(user.password_hash, password):
        user.failed_attempts = (user.failed_attempts or 0) + 1
        if user.failed_attempts >= LOCK_AFTER:
            user.locked_until = now + LOCK_FOR
            user.failed_attempts = 0
            return SignIn(user, "locked", user.locked_until)
        return SignIn(user, "wrong")
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_attempts = 0
    user.locked_until = None
    return SignIn(user, "ok")


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def start_session(session: Session, user: StaffUser, now: dt.datetime) -> str:
    """A new session id for ``user`` (returned once; only its hash is stored)."""
    sid = secrets.token_urlsafe(32)
    session.add(StaffSession(id_hash=digest(sid), user_id=user.id, tenant_id=user.tenant_id,
                             created_at=now, last_seen_at=now, expires_at=now + SESSION_MAX))
    user.last_signed_in_at = now
    # expired sessions of anyone go as new ones come: the table holds live ones only
    session.execute(sa.delete(StaffSession).where(StaffSession.expires_at < now))
    return sid


def session_user(session: Session, sid: str | None, now: dt.datetime) -> StaffUser | None:
    """The person a session id belongs to, if the session is live (its idle time renewed)."""
    if not sid:
        return None
    row = session.get(StaffSession, digest(sid))
    if row is None or row.expires_at <= now or row.last_seen_at + SESSION_IDLE <= now:
        return None
    user = session.get(StaffUser, row.user_id)
    if user is None:
        return None
    if now - row.last_seen_at > dt.timedelta(minutes=1):    # one write a minute, not a request
        row.last_seen_at = now
    return user


def end_session(session: Session, sid: str | None) -> None:
    if sid:
        session.execute(sa.delete(StaffSession).where(StaffSession.id_hash == digest(sid)))


def end_all_sessions(session: Session, user_id: str) -> None:
    session.execute(sa.delete(StaffSession).where(StaffSession.user_id == user_id))


# -- invitations ----------------------------------------------------------------------

def new_invite(session: Session, *, tenant_id: str, email: str, role: str,
               invited_by: str | None, now: dt.datetime) -> tuple[StaffInvite, str]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    token = secrets.token_urlsafe(32)
    invite = StaffInvite(id=str(uuid.uuid4()), tenant_id=tenant_id, email=email.strip().lower(),
                         role=role, token_hash=digest(token), invited_by=invited_by,
                         created_at=now, expires_at=now + INVITE_FOR)
    session.add(invite)
    return invite, token


def open_invite(session: Session, token: str, now: dt.datetime) -> StaffInvite | None:
    """The live invitation this token opens, or None (unknown, used, revoked or expired)."""
    invite = session.scalars(sa.select(StaffInvite).where(
        StaffInvite.token_hash == digest(token))).first()
    if invite is None or invite.accepted_at or invite.revoked_at or invite.expires_at <= now:
        return None
    return invite


def accept_invite(session: Session, invite: StaffInvite, *, name: str, password: str | None,
                  now: dt.datetime, oidc_subject: str | None = None) -> StaffUser:
    user = StaffUser(id=str(uuid.uuid4()), tenant_id=invite.tenant_id, email=invite.email,
                     name=name.strip(), role=invite.role,
                     password_hash=hash_password(password) if password else None,
                     oidc_subject=oidc_subject, failed_attempts=0, created_at=now,
                     updated_at=now)
    session.add(user)
    invite.accepted_at = now
    return user


def create_user(session: Session, *, tenant_id: str, email: str, name: str, role: str,
                password: str, now: dt.datetime) -> StaffUser:
    """A staff account made directly (``make run``'s demo user, ``hysbys`` commands)."""
    user = StaffUser(id=str(uuid.uuid4()), tenant_id=tenant_id, email=email.strip().lower(),
                     name=name, role=role, password_hash=hash_password(password),
                     failed_attempts=0, created_at=now, updated_at=now)
    session.add(user)
    return user

"""The keyed hash beside an encrypted phone number or email address (shared.pii)."""
from __future__ import annotations

import hashlib
import hmac

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import pii
from shared.crypto import SecretBox
from shared.db import Database as Db
from shared.db import EncryptedText, encrypt_with, insert_for, make_engine

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


class Base(DeclarativeBase):
    pass


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    phone_hash: Mapped[str | None] = mapped_column(sa.String(64), default=pii.hash_of("phone"))


pii.keep_hashed(Contact, {"phone_hash": "phone"})


def _db(keys: str) -> Db:
    db = Db(make_engine("sqlite://", "test"), "test")
    Base.metadata.create_all(db.engine)
    encrypt_with(db.engine, SecretBox(keys))
    return db


@pytest.mark.parametrize("written, same_as", [
    ("07700 900123", "+447700900123"), ("0044 7700 900123", "+447700900123"),
    ("+44 (0)7700 900 123", "+447700900123"),
    ("Ceri.Jones@Example.COM", "ceri.jones@example.com"), (" ceri@example.com ", "ceri@example.com"),
    ("60060", "60060")])
def test_one_number_or_address_however_written_has_one_hash(written, same_as):
    db = _db(OLD)
    assert pii.lookup_form(written) == same_as
    assert pii.lookup_hash(db.engine, written) == pii.lookup_hash(db.engine, same_as)
    assert pii.lookup_hash(db.engine, written) != pii.lookup_hash(db.engine, "+447700900124")


def test_the_hash_key_is_derived_separate_from_the_encryption_key_and_survives_a_rotation():
    old, rotated, other = _db(OLD), _db(f"{NEW},{OLD}"), _db(NEW)
    digest = pii.lookup_hash(old.engine, "+447700900123")
    assert len(digest) == 64 and "7700900123" not in digest
    assert pii.lookup_hash(rotated.engine, "+447700900123") == digest    # new key put first
    assert pii.lookup_hash(other.engine, "+447700900123") != digest      # a different secret
    # neither the Fernet key itself nor a plain hash of the number
    for key in (OLD.encode(), b""):
        assert digest != hmac.new(key, b"contact\x00+447700900123", hashlib.sha256).hexdigest()
    assert digest != hashlib.sha256(b"+447700900123").hexdigest()
    assert pii.attribute_hash(old.engine, "round", "+447700900123") != digest
    assert pii.lookup_hash(old.engine, None) is None and pii.lookup_hash(old.engine, " ") is None


def test_every_way_of_writing_fills_the_hash_column():
    db = _db(OLD)
    with db.transaction() as session:
        session.add(Contact(id=1, phone="07700 900001"))                           # ORM
        session.execute(sa.insert(Contact), [{"id": 2, "phone": "+447700900002"},  # executemany
                                             {"id": 3, "phone": None}])
        session.execute(insert_for(session, Contact).values(                       # multi-row VALUES
            [{"id": 4, "phone": "+447700900004"}, {"id": 5, "phone": "+447700900005"}]))
    with db.transaction() as session:
        session.get(Contact, 5).phone = "+447700900055"                            # ORM update
    with db.read() as session:
        rows = {c.id: c for c in session.scalars(sa.select(Contact))}
        for n, contact in rows.items():
            assert contact.phone_hash == pii.lookup_hash(session, contact.phone), n
        assert rows[3].phone_hash is None
        found = session.scalars(sa.select(Contact.id).where(
            Contact.phone_hash == pii.lookup_hash(session, "07700 900055"))).all()
        assert found == [5]
    with db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT phone FROM contacts WHERE phone IS NOT NULL")).scalars()
        assert all(v.startswith("gAAAAA") for v in stored)
    with pytest.raises(TypeError):
        Contact.phone == "+447700900001"     # noqa: B015 - the clear column cannot be compared

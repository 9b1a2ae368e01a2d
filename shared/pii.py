"""Personal data at rest: the keyed hash a look-up uses instead of the value.

Phone numbers, email addresses, names and addresses are stored encrypted
(:class:`shared.db.EncryptedText`, Fernet: randomised, so SQL cannot compare them).
Where a query must find a row by one of them (is this number suppressed? which
subscriber has this phone? what did we last send this number?) the row also holds
``lookup_hash(value)``: HMAC-SHA256 with a key derived from the platform key
(HKDF, :class:`shared.crypto.SecretBox`), separate from the encryption key.  Every
such query compares the hash column with :func:`lookup_hash` of what it looks for,
so the same normalisation is used on both sides: E.164 for a phone number, casefolded
for an email address (docs/personal-data.md lists the columns).
"""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy.types import String, TypeDecorator

from shared import phone

HASH_LENGTH = 64      # hex HMAC-SHA256: the sibling columns are String(64)
_UK_E164 = re.compile(r"\+44[1-9][0-9]{9}")


def lookup_form(value: str) -> str:
    """The one form a contact is hashed in: an email address casefolded, a phone
    number in E.164 (``07700 900123`` and ``+447700900123`` are one number), anything
    else (a short code, a sender name) stripped."""
    text = value.strip()
    if "@" in text:
        return text.casefold()
    if _UK_E164.fullmatch(text):
        # already what normalise() gives (or, if invalid, what the fallback gives): every
        # stored number is E.164, and parsing costs more than the hash itself
        return text
    return phone.try_normalise(text) or text


def _dialect(bind):
    if hasattr(bind, "get_bind"):          # a Session
        return bind.get_bind().dialect
    return getattr(bind, "dialect", bind)  # a Connection or Engine, or a Dialect


def lookup_hash(bind, value: str | None) -> str | None:
    """The keyed hash of a phone number or email address, as the sibling ``*_hash``
    column holds it, with the key of ``bind``'s engine (a Session, Connection or Engine).
    ``None`` (and an empty value) stays ``None``."""
    if value is None or not str(value).strip():
        return None
    from shared.db import box_of

    return _contact_digest(box_of(_dialect(bind)), str(value))


def _contact_digest(box, value: str) -> str:
    return box.lookup_digest(b"contact\x00" + lookup_form(value).encode())


def attribute_text(value: Any) -> str | None:
    """An attribute value as the audience filter compares it (text; JSON's spelling of
    numbers and booleans), or None for null."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def attribute_hash(bind, key: str, value: Any) -> str | None:
    """The keyed hash of one subscriber attribute (``round`` = ``A``): what an audience
    filter compares, so the attributes themselves can be encrypted.  Exact text: round
    ``A`` is not round ``a``, as before."""
    from shared.db import box_of

    return _attribute_digest(box_of(_dialect(bind)), key, value)


def _attribute_digest(box, key: str, value: Any) -> str | None:
    text = attribute_text(value)
    if text is None:
        return None
    return box.lookup_digest(b"attribute\x00" + key.encode() + b"\x00" + text.encode())


class AttributeHashParam(TypeDecorator):
    """A bound parameter holding an attribute value that reaches the database as its
    keyed hash, with the key of the engine the statement runs on."""

    impl = String
    cache_ok = True

    def __init__(self, key: str):
        super().__init__()
        self.key = key

    def process_bind_param(self, value, dialect):
        from shared.db import box_of

        return _attribute_digest(box_of(dialect), self.key, value)


def attribute_hashes(bind, attributes: dict | None) -> dict[str, str]:
    """``{key: attribute_hash}`` for every non-null attribute."""
    out = {}
    for key, value in (attributes or {}).items():
        digest = attribute_hash(bind, key, value)
        if digest is not None:
            out[key] = digest
    return out


def _row_value(context, source: str):
    """The value the row being inserted gives ``source`` (None if it gives none)."""
    try:
        return context.get_current_parameters().get(source)
    except KeyError:
        # SQLAlchemy 2.1 fails to isolate a multi-row VALUES group when the statement's
        # keys are columns: read the group's own parameter (``phone_m1``) instead
        params, column = context.current_parameters, context.current_column
        index = column.index + 1 if getattr(column, "_is_multiparam_column", False) else 0
        return params.get(f"{source}_m{index}", params.get(source) if index == 0 else None)


def hash_of(source: str):
    """A column default: the keyed hash of the row's ``source`` column, so every INSERT
    (the ORM, Core, executemany, multi-row VALUES) fills the hash column by itself."""
    def default(context):
        value = _row_value(context, source)
        if value is None or not str(value).strip():
            return None
        from shared.db import box_of

        return _contact_digest(box_of(context.dialect), str(value))
    return default


def attribute_hashes_of(source: str):
    """A column default: ``{key: attribute_hash}`` of the row's ``source`` attributes."""
    def default(context):
        from shared.db import box_of

        box = box_of(context.dialect)
        out = {}
        for key, value in (_row_value(context, source) or {}).items():
            digest = _attribute_digest(box, key, value)
            if digest is not None:
                out[key] = digest
        return out
    return default


def keep_hashed(model, contacts: dict[str, str], attributes: tuple[str, str] | None = None
                ) -> None:
    """Keep ``model``'s hash columns right whenever the ORM writes a row: ``contacts`` is
    ``{hash column: clear column}``, ``attributes`` ``(hash column, attributes column)``.
    Core inserts and upserts (which bypass the ORM) set them with :func:`lookup_hash`."""
    from sqlalchemy import event, inspect

    def fill(_mapper, connection, target, *, changed_only: bool) -> None:
        state = inspect(target)
        for hash_col, source in contacts.items():
            if not changed_only or state.attrs[source].history.has_changes():
                setattr(target, hash_col, lookup_hash(connection, getattr(target, source)))
        if attributes and (not changed_only
                           or state.attrs[attributes[1]].history.has_changes()):
            setattr(target, attributes[0], attribute_hashes(connection,
                                                            getattr(target, attributes[1])))

    event.listen(model, "before_insert",
                 lambda m, c, t: fill(m, c, t, changed_only=False))
    event.listen(model, "before_update",
                 lambda m, c, t: fill(m, c, t, changed_only=True))


# -- migrations: rows written in clear before, encrypted and hashed in place ---------

def _migration_box(conn):
    """The key of the engine Runtime bound (``hysbys db upgrade``), or, for the ``alembic``
    command, the one ``HYSBYS_SECRET_KEY`` names."""
    from shared import db

    box = db._BOXES.get(conn.dialect)
    if box is None:
        from shared.config import Settings
        from shared.crypto import SecretBox

        box = SecretBox(Settings.from_env().secret_key)
    return box


def convert_rows(conn, table: str, keys: tuple[str, ...], *, encrypt: tuple[str, ...] = (),
                 encrypt_json: tuple[str, ...] = (), hashes: dict[str, str] | None = None,
                 attribute_hashes_of: tuple[str, str] | None = None, batch: int = 1000) -> int:
    """Encrypt ``table``'s personal columns and fill their hash columns, for rows written
    before (in clear).  ``hashes`` is ``{hash column: clear column}``;
    ``attribute_hashes_of`` is ``(hash column, attributes column)``.  A value already a
    Fernet token is left as it is, so the conversion may run again.  Returns rows changed.
    """
    import sqlalchemy as sa

    from shared.db import _FERNET_TOKEN

    hashes = hashes or {}
    cols = set(keys) | set(encrypt) | set(encrypt_json) | set(hashes) | set(hashes.values())
    if attribute_hashes_of:
        cols |= set(attribute_hashes_of)
    t = sa.table(table, *[sa.column(c) for c in sorted(cols)])
    changed_columns = set(encrypt) | set(encrypt_json) | set(hashes)
    if attribute_hashes_of:
        changed_columns.add(attribute_hashes_of[0])
    update = (sa.update(t).where(*[t.c[k] == sa.bindparam(f"k_{k}") for k in keys])
              .values({c: sa.bindparam(f"v_{c}") for c in sorted(changed_columns)}))
    box, done, last = None, 0, None
    # keyset pages, unless a key column is itself encrypted (then every row at once)
    paged = not set(keys) & changed_columns
    while True:
        q = sa.select(t).order_by(*[t.c[k] for k in keys])
        if paged:
            q = q.limit(batch)
            if last is not None:
                q = q.where(sa.tuple_(*[t.c[k] for k in keys]) > sa.tuple_(*last))
        rows = conn.execute(q).mappings().all()
        if not rows:
            return done
        box = box or _migration_box(conn)
        params = []
        for row in rows:
            values = {}
            clear = dict(row)
            for c in encrypt:
                v = row[c]
                if v is not None and not _FERNET_TOKEN.fullmatch(str(v)):
                    values[c] = box.encrypt(str(v))
                elif v is not None:
                    clear[c] = box.decrypt(str(v))
            for c in encrypt_json:
                v = row[c]
                if v is not None and not (isinstance(v, str) and _FERNET_TOKEN.fullmatch(v)):
                    text = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                    values[c] = box.encrypt(text)
                    clear[c] = json.loads(text)
                elif v is not None:
                    clear[c] = json.loads(box.decrypt(v))
            for hash_col, source in hashes.items():
                if row[hash_col] is None and clear[source] is not None:
                    values[hash_col] = _contact_digest(box, str(clear[source]))
            if attribute_hashes_of and row[attribute_hashes_of[0]] is None:
                attrs = clear[attribute_hashes_of[1]] or {}
                values[attribute_hashes_of[0]] = json.dumps(
                    {k: _attribute_digest(box, k, v) for k, v in attrs.items()
                     if _attribute_digest(box, k, v) is not None}, separators=(",", ":"))
            if values:
                params.append({**{f"k_{k}": row[k] for k in keys},
                               **{f"v_{c}": values.get(c, row[c]) for c in changed_columns}})
        if params:
            conn.execute(update, params)
            done += len(params)
        if not paged:
            return done
        last = tuple(rows[-1][k] for k in keys)

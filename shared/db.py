"""Persistence: one database per service, reached through SQLAlchemy 2.

Each service owns its own schema on PostgreSQL (``search_path`` is set per
connection, so table names stay unqualified) or its own file on SQLite
(``var/hysbys.db`` becomes ``var/hysbys-notify.db`` and so on).  Services never
read each other's tables.
"""
from __future__ import annotations

import contextlib
import re
import time
import typing
import weakref
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> sa.MetaData:
    return sa.MetaData(naming_convention=NAMING)


class KernelBase(DeclarativeBase):
    """Tables every service has in its own schema: outbox, inbox, tenant replica."""

    metadata = new_metadata()


def service_url(database_url: str, service: str) -> str:
    """The URL one service connects to.  SQLite files are split per service."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        return str(url.set(database=str(path.with_name(f"{path.stem}-{service}{path.suffix}"))))
    return database_url


def make_engine(database_url: str, service: str) -> Engine:
    """An engine whose connections see only ``service``'s tables."""
    if not re.fullmatch(r"[a-z_]+", service):
        raise ValueError(f"bad service name {service!r}")
    url = make_url(service_url(database_url, service))
    backend = url.get_backend_name()
    if backend == "sqlite":
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if url.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    if backend == "postgresql":
        engine = sa.create_engine(
            url,
            pool_size=10,
            max_overflow=20,
            # no pool_pre_ping: it costs a round trip per transaction (8% of a busy
            # notify worker's time); _ping_if_idle checks only connections that sat idle
            # UPDATEs of many rows (the dispatcher's outcomes) go in pages, not a round
            # trip each; INSERTs already use multi-row VALUES
            executemany_mode="values_plus_batch",
            connect_args={"options": f"-csearch_path={service}", "connect_timeout": 5},
        )
        _ping_if_idle(engine)
        return engine
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


IDLE_BEFORE_PING = 1.0    # seconds a pooled connection may sit unused and be trusted


def _ping_if_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, only where it is needed: a connection that has
    sat in the pool for more than ``IDLE_BEFORE_PING`` seconds is pinged at checkout (a
    PostgreSQL restart leaves such connections dead; the pool then replaces them), while
    a busy worker's connections, back in the pool for milliseconds, are not.  A connection
    that dies while busy fails its statement; the caller's retry gets a fresh one, as
    SQLAlchemy invalidates the pool when it sees a disconnect."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)      # what pool_pre_ping would have done
        except Exception as exc:   # noqa: BLE001 - any failure means: not this connection
            raise sa.exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def _sqlite_pragmas(engine: Engine) -> None:
    # pysqlite's own transaction handling starts transactions lazily and then
    # fails with "database is locked" when two threads upgrade to a write lock.
    # Taking the write lock at BEGIN makes writers queue on busy_timeout instead.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit TO OFF")


class Database:
    """A service's engine and session factory."""

    def __init__(self, engine: Engine, service: str):
        self.engine = engine
        self.service = service
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def connect(cls, database_url: str, service: str) -> Database:
        return cls(make_engine(database_url, service), service)

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on any error.

        ``durable=False`` is for counters that may lose their last fraction of a second
        in a database crash (rate-limit counts): on PostgreSQL the commit does not wait
        for the WAL flush (``synchronous_commit = off`` for this transaction only), so a
        row lock on a busy counter is held for microseconds, not for a disk sync.  It is
        still atomic and isolated; only its durability is deferred (by at most three
        times ``wal_writer_delay``, 0.6 s by default)."""
        with self.sessions() as session, session.begin():
            if not durable and self.dialect == "postgresql":
                session.execute(_ASYNC_COMMIT)
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()


def upgrade(db: Database, migrations_dir: Path, revision: str = "head") -> None:
    """Bring ``db`` to ``revision`` with the service's Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{db.service}"'))
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["connection_engine"] = db.engine
    command.upgrade(cfg, revision)


def insert_for(session: Session, table):
    """A dialect-aware INSERT that supports ``.on_conflict_do_nothing()`` / ``_do_update()``."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def rows_changed(result) -> int:
    """How many rows an INSERT, UPDATE or DELETE changed (``Session.execute`` is typed to
    return a ``Result``; a DML statement's is a ``CursorResult``, which has the count)."""
    from sqlalchemy.engine import CursorResult

    return typing.cast(CursorResult, result).rowcount or 0


def utcnow():
    import datetime as dt

    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """Timestamps stored in UTC and always handed back timezone-aware (SQLite too)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        import datetime as dt

        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        import datetime as dt

        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# -- message bodies and replies, encrypted at rest ---------------------------------
# The box belongs to the engine (its dialect: one per engine, shared by its connections
# and execution-option copies), so every way a statement reaches the database — the
# ORM, Core inserts with many rows (executemany), insert_for(...).values([...]) and
# upserts — encrypts with the right service's key.  Set by Runtime when it is built.
_BOXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# a Fernet token: version byte 0x80 and a 64-bit timestamp whose high bytes are zero
# for millennia ("gAAAAA"); 73 bytes at least (an empty text), so 100 characters or more
_FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_-]{92,}={0,2}")


def encrypt_with(engine: Engine, box) -> None:
    """Make ``engine``'s :class:`EncryptedText` columns encrypt and decrypt with ``box``
    (a :class:`shared.crypto.SecretBox`)."""
    _BOXES[engine.dialect] = box


def box_of(dialect):
    """The box bound to this dialect's engine (``encrypt_with``); raises without one."""
    return _box(dialect)


def _box(dialect):
    box = _BOXES.get(dialect)
    if box is None:
        raise RuntimeError("an EncryptedText column was used on an engine without a key: "
                           "call shared.db.encrypt_with(engine, box) (Runtime does)")
    return box


class _Unsearchable(sa.types.TypeDecorator.Comparator):
    """Fernet is randomised: ``body == x`` or ``LIKE`` would silently match nothing.
    Only ``IS [NOT] NULL`` is allowed on an encrypted column."""

    def operate(self, op, *other, **kwargs):
        from sqlalchemy.sql import operators
        from sqlalchemy.sql.elements import BindParameter, ColumnElement

        if op in (operators.is_, operators.is_not) or (
                # None is IS NULL; column == column is how the ORM finds a mapped column
                op in (operators.eq, operators.ne) and len(other) == 1 and (
                    other[0] is None or (isinstance(other[0], ColumnElement)
                                         and not isinstance(other[0], BindParameter)))):
            return super().operate(op, *other, **kwargs)
        raise TypeError(f"{self.expr} is encrypted at rest: it cannot be compared, searched "
                        "or sorted in SQL (filter on another column, then read it)")

    def reverse_operate(self, op, other, **kwargs):
        raise TypeError(f"{self.expr} is encrypted at rest: it cannot be compared in SQL")


class EncryptedText(sa.types.TypeDecorator):
    """Text stored as a Fernet token (Text in the schema) and handed back in clear.

    Rows written before encryption (plain text) are read as they are: a value that is
    not a Fernet token is returned unchanged (docs/decisions.md, "Message bodies are
    encrypted at rest").  A token that does not decrypt (a wrong ``HYSBYS_SECRET_KEY``)
    raises rather than show ciphertext as a message.
    """

    impl = sa.Text
    cache_ok = True
    comparator_factory = _Unsearchable

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText takes str, not {type(value).__name__}")
        return _box(dialect).encrypt(value)

    def process_result_value(self, value, dialect):
        if value is None or not _FERNET_TOKEN.fullmatch(value):
            return value
        return _box(dialect).decrypt(value)


class EncryptedJSON(EncryptedText):
    """A JSON value (an object of attributes, personalisation) stored as a Fernet token.

    Rows written before encryption hold the JSON itself: read as they are."""

    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        import json

        return super().process_bind_param(json.dumps(value, separators=(",", ":")), dialect)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        import json

        if not isinstance(value, str):          # a JSON column's value from before
            return value
        return json.loads(super().process_result_value(value, dialect))


def autogenerate(service: str, migrations_dir: Path, message: str, database_url: str) -> None:
    """Write a new migration for ``service`` by diffing its models against ``database_url``
    (a scratch database at the current head).  Review the file before committing it."""
    from alembic import command
    from alembic.config import Config

    db = Database.connect(database_url, service)
    upgrade(db, migrations_dir)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["connection_engine"] = db.engine
    command.revision(cfg, message=message, autogenerate=True,
                     rev_id=f"{len(list((migrations_dir / 'versions').glob('*.py'))) + 1:04d}")

"""Persistence: one database per service, reached through SQLAlchemy 2.

Each service owns its own schema on PostgreSQL (``search_path`` is set per
connection, so table names stay unqualified) or its own file on SQLite
(``var/hysbys.db`` becomes ``var/hysbys-notify.db`` and so on).  Services never
read each other's tables.
"""
from __future__ import annotations

import contextlib
import re
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


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


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
            pool_pre_ping=True,
            # UPDATEs of many rows (the dispatcher's outcomes) go in pages, not a round
            # trip each; INSERTs already use multi-row VALUES
            executemany_mode="values_plus_batch",
            connect_args={"options": f"-csearch_path={service}", "connect_timeout": 5},
        )
        return engine
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


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
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on any error."""
        with self.sessions() as session, session.begin():
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

"""The peer: GOV.UK Notify's design, reduced to its sending core.

A PostgreSQL row per notification and one Celery task per notification on the
same RabbitMQ; the worker loads the row, calls the same simulator, updates the
row.  (Notify itself uses two tasks per notification, save then deliver; one is
the peer's best case.)  Celery runs as GOV.UK Notify runs it: prefork, one
process per core, ``acks_late``.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa
from celery import Celery

from bench.common import wait_for_count

TABLE = "peer_notifications"
app = Celery("bench.peer_celery")
app.conf.update(
    broker_url=os.environ.get("PEER_BROKER_URL", "memory://"),
    task_acks_late=True, worker_prefetch_multiplier=4, task_serializer="json",
    accept_content=["json"], task_default_queue="peer-send-sms", worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_engine = None
_simulator = None


def _db():
    global _engine
    if _engine is None:
        _engine = sa.create_engine(os.environ["PEER_DATABASE_URL"], pool_size=2)
    return _engine


@app.task(name="deliver_sms")
def deliver_sms(notification_id: str) -> None:
    global _simulator
    from services.notify.providers.base import OutgoingMessage
    from services.notify.providers.simulator import Simulator

    if _simulator is None:
        _simulator = Simulator()
        _simulator.keep_messages = False
    with _db().begin() as conn:
        row = conn.execute(sa.text(f"SELECT id, recipient, body, status FROM {TABLE} WHERE id = :id"),
                           {"id": notification_id}).one()
        if row.status != "created":
            return
        result = _simulator.send(OutgoingMessage(row.id, "sms", row.recipient, row.body))
        conn.execute(sa.text(f"UPDATE {TABLE} SET status = :s, sent_at = clock_timestamp() "
                             "WHERE id = :id"), {"s": result.status, "id": notification_id})


def prepare(database_url: str) -> None:
    with sa.create_engine(database_url).begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(sa.text(
            f"CREATE TABLE {TABLE} (id varchar(36) PRIMARY KEY, tenant_id varchar(36), "
            "recipient varchar(32), body text, status varchar(24), created_at timestamptz, "
            "sent_at timestamptz)"))


def start_workers(database_url: str, broker_url: str, concurrency: int,
                  log_path: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PEER_DATABASE_URL": database_url, "PEER_BROKER_URL": broker_url}
    # a log file, never an unread pipe (a full pipe would stall the worker); its own
    # process group, so stopping it takes the prefork children too
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.peer_celery", "worker", "-c",
             str(concurrency), "--pool", "prefork", "--loglevel", "WARNING", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            env=env, stdout=log, stderr=log, start_new_session=True)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()


def stop_workers(workers: subprocess.Popen) -> None:
    """Warm shutdown, then the whole process group if it does not come."""
    if workers.poll() is None:
        workers.terminate()
    try:
        workers.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(workers.pid, signal.SIGKILL)
        workers.wait(5)


def _insert(conn, rows: list[dict]) -> None:
    conn.execute(sa.text(f"INSERT INTO {TABLE} (id, tenant_id, recipient, body, status, "
                         "created_at) VALUES (:id, :tenant_id, :recipient, :body, "
                         "'created', clock_timestamp())"), rows)


def fire(database_url: str, broker_url: str, recipients: list[tuple[str, str, str]]) -> float:
    """The peer's 'ticker firing': a row and a task per notification.  Returns t0.

    The broker connection is made here for ``broker_url`` (never Celery's pool, which
    would keep the vhost of an earlier run in the same process)."""
    engine = sa.create_engine(database_url)
    with app.connection_for_write(broker_url) as connection:
        producer = app.amqp.Producer(connection)
        t0 = time.time()
        for start in range(0, len(recipients), 1000):
            chunk = recipients[start:start + 1000]
            rows = [{"id": str(uuid.uuid4()), "tenant_id": tenant, "recipient": to, "body": body}
                    for tenant, to, body in chunk]
            with engine.begin() as conn:
                _insert(conn, rows)
            for row in rows:
                deliver_sms.apply_async((row["id"],), producer=producer)
    engine.dispose()
    return t0


class OneAtATime:
    """Sends single notifications the peer's way (a row, then a task), on its own
    database engine and broker connection, so it can run beside :func:`fire`."""

    def __init__(self, database_url: str, broker_url: str):
        self.engine = sa.create_engine(database_url, pool_size=1)
        self.connection = app.connection_for_write(broker_url)
        self.producer = app.amqp.Producer(self.connection)

    def send(self, tenant: str, to: str, body: str) -> str:
        row = {"id": str(uuid.uuid4()), "tenant_id": tenant, "recipient": to, "body": body}
        with self.engine.begin() as conn:
            _insert(conn, [row])
        deliver_sms.apply_async((row["id"],), producer=self.producer)
        return row["id"]

    def close(self) -> None:
        self.connection.release()
        self.engine.dispose()


def wait_done(database_url: str, n: int, t0: float, timeout: float = 1800, progress=None,
              tenant: str | None = None) -> dict:
    """Wait until ``n`` rows (of ``tenant``, or all) are handed off; then the count, the last
    hand-off and the t0 → hand-off percentiles, worked out in SQL."""
    engine = sa.create_engine(database_url, pool_pre_ping=True)
    scope = "sent_at IS NOT NULL" + (" AND tenant_id = :tenant" if tenant else "")
    params = {"tenant": tenant, "t0": t0}

    def count() -> int:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {TABLE} WHERE {scope}"),
                                params).scalar()
    waited = wait_for_count(count, n, timeout, 0.5, progress)
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT count(*), percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch from sent_at) - :t0), max(extract(epoch from sent_at)) "
            f"FROM {TABLE} WHERE {scope}"), params).one()
    engine.dispose()
    latency = {} if not row[0] else {
        "p50": round(float(row[1][0]), 3), "p95": round(float(row[1][1]), 3),
        "p99": round(float(row[1][2]), 3), "max": round(float(row[2]) - t0, 3)}
    return {"done": int(row[0]), "timed_out": waited["timed_out"],
            "database_connection_lost": waited["database_connection_lost"],
            "last_handoff_epoch": float(row[2]) if row[2] is not None else None,
            "t0_to_handoff_seconds": latency}


def handoff_times(database_url: str, ids: list[str]) -> dict[str, float | None]:
    """Each row's ``sent_at`` as epoch seconds (None while not handed off)."""
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT id, extract(epoch from sent_at) FROM {TABLE} "
                                    "WHERE id = ANY(:ids)"), {"ids": list(ids)}).all()
    engine.dispose()
    found = {i: (float(t) if t is not None else None) for i, t in rows}
    return {i: found.get(i) for i in ids}

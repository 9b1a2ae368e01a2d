"""The peer: GOV.UK Notify's design, reduced to its sending core.

A PostgreSQL row per notification and one Celery task per notification on the
same RabbitMQ; the worker loads the row, calls the same simulator, updates the
row.  (Notify itself uses two tasks per notification, save then deliver; one is
the peer's best case.)  Celery runs as GOV.UK Notify runs it: prefork, one
process per core, ``acks_late``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa
from celery import Celery

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


def start_workers(database_url: str, broker_url: str, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "PEER_DATABASE_URL": database_url, "PEER_BROKER_URL": broker_url}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.peer_celery", "worker", "-c",
         str(concurrency), "--pool", "prefork", "--loglevel", "WARNING", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def fire(database_url: str, broker_url: str, recipients: list[tuple[str, str, str]]) -> float:
    """The peer's 'ticker firing': a row and a task per notification.  Returns t0."""
    app.conf.broker_url = broker_url
    engine = sa.create_engine(database_url)
    t0 = time.time()
    for start in range(0, len(recipients), 1000):
        chunk = recipients[start:start + 1000]
        rows = [{"id": str(uuid.uuid4()), "tenant_id": tenant, "recipient": to, "body": body}
                for tenant, to, body in chunk]
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO {TABLE} (id, tenant_id, recipient, body, status, "
                                 "created_at) VALUES (:id, :tenant_id, :recipient, :body, "
                                 "'created', clock_timestamp())"), rows)
        with app.producer_or_acquire() as producer:
            for row in rows:
                deliver_sms.apply_async((row["id"],), producer=producer)
    engine.dispose()
    return t0


def wait_done(database_url: str, n: int, timeout: float = 1800) -> dict:
    engine = sa.create_engine(database_url)
    deadline = time.time() + timeout
    with engine.connect() as conn:
        while time.time() < deadline:
            done = conn.execute(sa.text(f"SELECT count(*) FROM {TABLE} WHERE sent_at IS NOT NULL")
                                ).scalar()
            if done >= n:
                break
            time.sleep(0.5)
        latencies = [r[0] for r in conn.execute(sa.text(
            f"SELECT extract(epoch from sent_at - created_at) FROM {TABLE} ORDER BY 1"))]
        last = conn.execute(sa.text(f"SELECT extract(epoch from max(sent_at)) FROM {TABLE}")).scalar()
    engine.dispose()
    return {"done": done, "last_handoff_epoch": float(last), "latencies": latencies}

"""Benchmark (not a test): one evening of bin reminders for a council of 1,000,000 households.

A tenant with N subscribers on 22 collection rounds (fortnightly, Monday to
Friday, so two or three rounds are collected on any weekday) and one collection
campaign reminding at 18:00 the evening before.  For each database (a SQLite
file in a temporary folder, and a throwaway PostgreSQL database on 127.0.0.1)
and each N, it

1. seeds the subscribers with bulk inserts (COPY on PostgreSQL), in one process;
2. in a *fresh* process, so its peak RSS is the scheduler's own, plans the
   evening (``Ticker.plan_ahead``) and runs the ticker until the evening's
   occurrences are emitted to the outbox, then reports the times, the count
   and the peak RSS (``resource.getrusage``).

Usage::

    PYTHONPATH=. python bench/scheduler_memory.py --subscribers 100000 1000000 \\
        --db sqlite postgresql

Results are printed as a table and as JSON lines (``--json``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROUNDS = 22
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")
FIRST_MONDAY = dt.date(2099, 1, 5)
EVENING = dt.date(2099, 1, 19)           # a Monday: Tuesday's rounds are reminded
PG_ADMIN_URL = os.environ.get("HYSBYS_TEST_PG_ADMIN_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def round_rule(n: int) -> tuple[str, dt.date]:
    """Round n: fortnightly on one weekday, in week A or week B."""
    weekday, week = n % 5, (n // 5) % 2
    return (f"FREQ=WEEKLY;INTERVAL=2;BYDAY={WEEKDAYS[weekday]}",
            FIRST_MONDAY + dt.timedelta(days=weekday + 7 * week))


def expected_requests(subscribers: int) -> int:
    """How many requests the evening must emit: the subscribers on a round collected the
    day after ``EVENING`` (by the rounds' own rules), less the opted-out ones."""
    from dateutil.rrule import rrulestr

    day = EVENING + dt.timedelta(days=1)
    collected = set()
    for n in range(ROUNDS):
        rule, start = round_rule(n)
        moment = dt.datetime.combine(day, dt.time())
        if rrulestr(rule, dtstart=dt.datetime.combine(start, dt.time())).between(
                moment, moment, inc=True):
            collected.add(f"R{n:02d}")
    return sum(1 for n in range(subscribers)
               if f"R{n % ROUNDS:02d}" in collected and n % 50 != 0)


def service(database_url: str):
    from cryptography.fernet import Fernet

    from services.scheduler.wiring import build
    from shared.config import Settings

    # one key for both phases (the seed encrypts the contacts and attributes and hashes
    # them with it; the evening decrypts and filters with it): made by one() per run
    key = os.environ.get("HYSBYS_BENCH_SECRET_KEY") or Fernet.generate_key().decode()
    settings = Settings(database_url=database_url, broker_url="memory://",
                        secret_key=key, admin_token="bench")
    return build(settings)


def seed(database_url: str, subscribers: int) -> dict:
    import sqlalchemy as sa

    from services.scheduler import campaigns
    from services.scheduler.models import Round, Subscriber
    from shared.tenancy import Tenant

    svc = service(database_url)
    svc.runtime.migrate()
    db = svc.runtime.db
    tenant_id, now = str(uuid.uuid4()), dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    with db.transaction() as session:
        session.add(Tenant(id=tenant_id, slug="bench", name="Bench", config={
            "quiet_hours": {"start": "21:00", "end": "08:00"},
            "capacity": {"segments_per_second": 10, "senders": 5}}))
        for n in range(ROUNDS):
            rule, start = round_rule(n)
            session.add(Round(id=str(uuid.uuid4()), tenant_id=tenant_id, code=f"R{n:02d}",
                              name=f"Round {n}", rrule=rule, start=start, exdates=[], moves=[],
                              description={"cy": "bagiau du", "en": "black bags"},
                              personalisation={}))
    if db.dialect == "postgresql":
        _copy_subscribers(db, svc.runtime.settings.secret_key, tenant_id, subscribers, now)
    else:
        chunk = 20_000
        for first in range(0, subscribers, chunk):
            with db.transaction() as session:
                session.execute(sa.insert(Subscriber), [
                    _subscriber(tenant_id, n, now) for n in range(first,
                                                                  min(first + chunk, subscribers))])
    loaded = time.perf_counter() - started
    with db.transaction() as session:
        campaign = campaigns.create(session, tenant_id, {
            "name": "Bins", "kind": "collection", "template_id": uuid.uuid4(), "channel": "sms",
            "audience": {}, "personalisation": {}, "urgent": False, "fragments": 2,
            "schedule": {"days_before": 1, "at": "18:00"}}, now)
        campaign.planned_until = None
    db.dispose()
    return {"seed_seconds": round(loaded, 1)}


def _subscriber(tenant_id: str, n: int, now) -> dict:
    return {"id": str(uuid.UUID(int=n + 1)), "tenant_id": tenant_id,
            "phone": f"+4477{n:08d}", "email": None, "language": ("cy", "en", None)[n % 3],
            "attributes": {"round": f"R{n % ROUNDS:02d}", "uprn": str(10_000_000 + n)},
            "opted_out": n % 50 == 0, "created_at": now, "updated_at": now}


def _copy_subscribers(db, secret_key: str, tenant_id: str, subscribers: int, now) -> None:
    """COPY, written as the scheduler writes rows: the phone and attributes encrypted,
    their keyed hashes beside them (shared.pii), so audience filters find them."""
    from shared import pii
    from shared.crypto import SecretBox

    box = SecretBox(secret_key)
    columns = ("id", "tenant_id", "phone", "phone_hash", "email", "language", "attributes",
               "attribute_hashes", "opted_out", "created_at", "updated_at")
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        chunk = 100_000
        for first in range(0, subscribers, chunk):
            buf = io.StringIO()
            for n in range(first, min(first + chunk, subscribers)):
                row = _subscriber(tenant_id, n, now)
                buf.write("\t".join((
                    row["id"], tenant_id, box.encrypt(row["phone"]),
                    pii.lookup_hash(db.engine, row["phone"]), r"\N", row["language"] or r"\N",
                    box.encrypt_json(row["attributes"]),
                    json.dumps(pii.attribute_hashes(db.engine, row["attributes"])),
                    "t" if row["opted_out"] else "f", str(now), str(now))) + "\n")
            buf.seek(0)
            cur.copy_expert(f"COPY subscribers ({', '.join(columns)}) FROM STDIN", buf)
        raw.commit()
    finally:
        raw.close()


def run_evening(database_url: str) -> dict:
    """Plan and emit one evening, in this (fresh) process; peak RSS is this process's."""
    import sqlalchemy as sa

    from services.scheduler.models import Occurrence
    from services.scheduler.recurrence import local_instant
    from services.scheduler.ticker import Ticker
    from shared.outbox import OutboxRow

    baseline = _rss_mb()
    svc = service(database_url)
    db = svc.runtime.db
    ticker = Ticker(db, batch=1000)
    six = local_instant(EVENING, dt.time(18))
    started = time.perf_counter()
    planned = ticker.plan_ahead(six - dt.timedelta(hours=1), force=True)
    planned_seconds = time.perf_counter() - started
    started = time.perf_counter()
    emitted = ticker.run_once(now=six)
    emit_seconds = time.perf_counter() - started
    with db.read() as session:
        evening = session.execute(sa.select(Occurrence.occurrence_key, Occurrence.requested)
                                  .where(Occurrence.due_at == six)).all()
        outbox = session.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.event_type == "notification.requested"))
    db.dispose()
    return {"occurrences_planned": planned, "evening_occurrences": len(evening),
            "emitted": emitted, "outbox_rows": outbox, "plan_seconds": round(planned_seconds, 2),
            "emit_seconds": round(emit_seconds, 1),
            "emit_per_second": round(emitted / emit_seconds) if emit_seconds else None,
            "rss_baseline_mb": baseline, "peak_rss_mb": _rss_mb()}


def _rss_mb() -> float:
    """This process's peak RSS so far, in MB: ``VmHWM``, the high-water mark of its own
    address space.  Not ``ru_maxrss``: Linux carries that across fork and exec, so a
    fresh process started by a big one reports its parent's size (the recorded runs
    before 2026-11-26 said 171 MB "after imports" because the bench process was that
    big when it started this one)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    # not Linux: ru_maxrss (KiB on Linux, bytes on macOS), which has no such carry-over there
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)


def _phase(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=False, env={**os.environ, "PYTHONPATH": str(Path(__file__)
                                                                          .parents[1])})
    if out.returncode != 0:
        raise SystemExit(f"phase {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def one(db_kind: str, subscribers: int) -> dict:
    import sqlalchemy as sa
    from cryptography.fernet import Fernet

    with tempfile.TemporaryDirectory() as tmp:
        if db_kind == "sqlite":
            url, drop = f"sqlite:///{tmp}/bench.db", None
        else:
            name = f"hysbys_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

            def drop():
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        os.environ.setdefault("HYSBYS_BENCH_SECRET_KEY", Fernet.generate_key().decode())
        try:
            result = {"db": db_kind, "subscribers": subscribers,
                      **_phase(["--phase", "seed", url, str(subscribers)]),
                      **_phase(["--phase", "run", url])}
        finally:
            if drop:
                drop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        kind, url, *rest = args.phase
        print(json.dumps(seed(url, int(rest[0])) if kind == "seed" else run_evening(url)))
        return
    print(f"{'db':<11}{'subscribers':>12}{'seed s':>8}{'evening occ':>12}{'emitted':>9}"
          f"{'plan s':>8}{'emit s':>8}{'per s':>7}{'peak RSS MB':>12}", flush=True)
    for kind in args.db:
        for n in args.subscribers:
            r = one(kind, n)
            if args.json:
                print(json.dumps(r), flush=True)
            print(f"{r['db']:<11}{r['subscribers']:>12,}{r['seed_seconds']:>8}"
                  f"{r['evening_occurrences']:>12}{r['emitted']:>9,}{r['plan_seconds']:>8}"
                  f"{r['emit_seconds']:>8}{r['emit_per_second']:>7}{r['peak_rss_mb']:>12}",
                  flush=True)


if __name__ == "__main__":
    main()

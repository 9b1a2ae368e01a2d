"""Setting up and timing the platform on the real stack (separate processes)."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from notifications_python_client.authentication import create_jwt_token

from bench.common import wait_for_count
from bench.procs import Stack, free_port, platform_env
from shared import pii
from shared.crypto import SecretBox
from shared.db import encrypt_with, make_engine

TEMPLATE = {"name": "Bin day", "type": "sms",
            "body": {"cy": "Helo ((name)), casgliad biniau yfory: rownd ((round)).",
                     "en": "Hello ((name)), bin collection tomorrow: round ((round))."}}


def auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


@dataclass
class Platform:
    stack: Stack
    database_url: str
    urls: dict[str, str]
    admin: dict

    @classmethod
    def start(cls, database_url: str, broker_url: str, log_dir: str | None = None,
              notify_workers: int = 1) -> Platform:
        ports = {"notify": free_port(), "inbound": free_port(), "scheduler": free_port()}
        admin_token = "bench-admin-" + uuid.uuid4().hex
        env = platform_env(database_url, broker_url, Fernet.generate_key().decode(),
                           admin_token, ports)
        subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], env=env,
                       check=True, capture_output=True)
        stack = Stack(env)
        # as docker-compose runs it: notify's consumers and its dispatcher in two processes
        for i in range(notify_workers):
            stack.add(f"notify-worker-{i}" if notify_workers > 1 else "notify-worker",
                      ["worker", "notify", "--no-dispatcher"], log_dir=log_dir)
        stack.add("notify-dispatcher", ["dispatcher"], log_dir=log_dir)
        stack.add("scheduler-worker", ["worker", "scheduler"], log_dir=log_dir)
        stack.add("inbound-worker", ["worker", "inbound"], log_dir=log_dir)
        stack.add("scheduler-ticker", ["ticker"], log_dir=log_dir)
        stack.add("notify-api", ["serve", "notify", "--workers", "2", "--threads", "8"],
                  metrics=False, log_dir=log_dir)
        stack.add("scheduler-api", ["serve", "scheduler", "--workers", "2", "--threads", "8"],
                  metrics=False, log_dir=log_dir)
        stack.add("inbound-api", ["serve", "inbound", "--workers", "2", "--threads", "8"],
                  metrics=False, log_dir=log_dir)
        stack.start()
        urls = {k: f"http://127.0.0.1:{v}" for k, v in ports.items()}
        try:
            for name in ("notify", "scheduler", "inbound"):
                stack.wait_http(urls[name] + "/healthz")
        except Exception:
            stack.stop()     # never leave processes behind
            raise
        return cls(stack, database_url, urls, {"Authorization": f"Bearer {admin_token}"})

    def proc(self, name: str):
        return next(p for p in self.stack.procs if p.name == name)

    def create_tenant(self, slug: str, **config) -> dict:
        """A tenant through the admin API, its settings patched, and a bin-day template."""
        tenant = _ok(requests.post(f"{self.urls['notify']}/admin/tenants", headers=self.admin,
                                   timeout=30, json={"name": slug.title(), "slug": slug}))
        _ok(requests.patch(f"{self.urls['notify']}/admin/tenants/{tenant['id']}",
                           headers=self.admin, timeout=30, json={"quiet_hours": None, **config}))
        tenant["template_id"] = self.create_template(tenant, TEMPLATE)
        return tenant

    def create_template(self, tenant: dict, template: dict) -> str:
        """A template of the tenant's through notify's API; its id."""
        return _ok(requests.post(f"{self.urls['notify']}/api/templates", json=template,
                                 headers=auth(tenant["api_key"]), timeout=30))["id"]

    def wait_replicated(self, tenants: list[dict], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for t in tenants:
            while requests.get(f"{self.urls['scheduler']}/api/campaigns",
                               headers=auth(t["api_key"]), timeout=10).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("tenants did not reach the scheduler")
                time.sleep(0.2)

    def seed_subscribers(self, tenants: list[dict], n: int, rounds: int = 22) -> None:
        """Bulk-load the audience straight into the scheduler's schema (set-up, not measured).

        COPY, in chunks: a million rows load in seconds rather than minutes.  Written as
        the scheduler writes them: phone and attributes encrypted, their keyed hashes beside
        them (shared.pii), so the run pays for decryption as production does."""
        columns = ("id", "tenant_id", "phone", "phone_hash", "language", "attributes",
                   "attribute_hashes", "opted_out", "created_at", "updated_at")
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        engine = make_engine(self.database_url, "scheduler")
        box = SecretBox(self.stack.env["HYSBYS_SECRET_KEY"])
        encrypt_with(engine, box)
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for first in range(0, n, 100_000):
                buf = io.StringIO()
                for i in range(first, min(first + 100_000, n)):
                    attributes = {"name": f"Person {i}", "round": f"R{i % rounds}"}
                    number = f"+447400{i:06d}"      # a valid mobile range
                    buf.write("\t".join((
                        str(uuid.uuid4()), tenants[i % len(tenants)]["id"],
                        box.encrypt(number), pii.lookup_hash(engine, number),
                        ("cy", "en", r"\N")[i % 3], box.encrypt_json(attributes),
                        json.dumps(pii.attribute_hashes(engine, attributes)), "f", now, now)
                    ) + "\n")
                buf.seek(0)
                cur.copy_expert(f"COPY subscribers ({', '.join(columns)}) FROM STDIN", buf)
            raw.commit()
        finally:
            raw.close()
            engine.dispose()

    def schedule_broadcasts(self, tenants: list[dict], due: dt.datetime) -> None:
        for t in tenants:
            r = requests.post(f"{self.urls['scheduler']}/api/campaigns", headers=auth(t["api_key"]),
                              timeout=30, json={"name": "Bin night", "kind": "broadcast",
                                                "template_id": t["template_id"], "channel": "sms",
                                                "send_at": due.isoformat(), "audience": {}})
            if r.status_code != 201:
                raise RuntimeError(f"campaign refused: {r.status_code} {r.text}")

    def wait_handed_off(self, n: int, since: dt.datetime, timeout: float = 3600,
                        progress=None, tenant_id: str | None = None) -> dict:
        """Wait until ``n`` notifications (of ``tenant_id``, or all) have a hand-off stamp;
        then their count and the due-time → hand-off percentiles, worked out in SQL."""
        engine = make_engine(self.database_url, "notify")
        scope = "sent_at IS NOT NULL" + (" AND tenant_id = :tenant" if tenant_id else "")
        params = {"t0": since, "tenant": tenant_id}
        # counting a million rows costs the database a little: ask less often as n grows
        pause = 1.0 if n <= 100_000 else 3.0

        def count() -> int:
            with engine.connect() as conn:
                return conn.execute(sa.text(f"SELECT count(*) FROM notifications WHERE {scope}"),
                                    params).scalar()
        waited = wait_for_count(count, n, timeout, pause, progress)
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT count(*), percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
                "(ORDER BY extract(epoch from sent_at - :t0)), max(extract(epoch from sent_at - :t0)) "
                f"FROM notifications WHERE {scope}"), params).one()
            total = conn.execute(sa.text("SELECT count(*) FROM notifications" + (
                " WHERE tenant_id = :tenant" if tenant_id else "")), params).scalar()
        engine.dispose()
        latency = {} if not row[0] else {
            "p50": round(float(row[1][0]), 3), "p95": round(float(row[1][1]), 3),
            "p99": round(float(row[1][2]), 3), "max": round(float(row[2]), 3)}
        return {"handed_off": int(row[0]), "notifications": int(total),
                "timed_out": waited["timed_out"], "due_to_handoff_seconds": latency,
                "database_connection_lost": waited["database_connection_lost"]}

    def handoff_times(self, ids: list[str]) -> dict[str, dt.datetime | None]:
        """Each notification's ``sent_at`` (None while it has not been handed off)."""
        engine = make_engine(self.database_url, "notify")
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, sent_at FROM notifications WHERE id = ANY(:ids)"),
                                {"ids": list(ids)}).all()
        engine.dispose()
        found = dict(rows)
        return {i: found.get(i) for i in ids}

    def profile_if_asked(self, names: list[str], seconds: int) -> bool:
        """With ``HYSBYS_BENCH_PROFILE=dir``: py-spy on the named processes (gunicorn's
        workers too) for ``seconds``, in ``HYSBYS_BENCH_PROFILE_FORMAT`` (flamegraph by
        default).  Its sampling costs CPU: never in a recorded run.  Answers whether it
        was asked for."""
        out = os.environ.get("HYSBYS_BENCH_PROFILE")
        if out:
            self.stack.profile(names, out, seconds,
                               os.environ.get("HYSBYS_BENCH_PROFILE_FORMAT", "flamegraph"))
        return bool(out)

    def count(self, service: str, table: str) -> int:
        """Rows in one of a service's tables (its schema)."""
        engine = make_engine(self.database_url, service)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.stack.stop()


def _ok(response: requests.Response) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.url} answered "
                           f"{response.status_code}: {response.text[:500]}")
    return response.json()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    s = sorted(values)

    def p(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)
    return {"p50": p(0.50), "p95": p(0.95), "p99": p(0.99), "max": round(s[-1], 3)}

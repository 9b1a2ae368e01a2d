"""Setting up and timing the platform on the real stack (separate processes)."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from notifications_python_client.authentication import create_jwt_token

from bench.procs import Stack, free_port, platform_env
from shared.db import make_engine

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
        for i in range(notify_workers):
            stack.add(f"notify-worker-{i}" if notify_workers > 1 else "notify-worker",
                      ["worker", "notify"], log_dir=log_dir)
        stack.add("scheduler-worker", ["worker", "scheduler"], log_dir=log_dir)
        stack.add("inbound-worker", ["worker", "inbound"], log_dir=log_dir)
        stack.add("scheduler-ticker", ["ticker"], log_dir=log_dir)
        stack.add("notify-api", ["serve", "notify", "--workers", "2", "--threads", "8"],
                  metrics=False, log_dir=log_dir)
        stack.add("scheduler-api", ["serve", "scheduler", "--workers", "1"], metrics=False,
                  log_dir=log_dir)
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
        r = requests.post(f"{self.urls['notify']}/admin/tenants", headers=self.admin, timeout=30,
                          json={"name": slug.title(), "slug": slug})
        r.raise_for_status()
        tenant = r.json()
        requests.patch(f"{self.urls['notify']}/admin/tenants/{tenant['id']}", headers=self.admin,
                       timeout=30, json={"quiet_hours": None, **config}).raise_for_status()
        r = requests.post(f"{self.urls['notify']}/api/templates", json=TEMPLATE,
                          headers=auth(tenant["api_key"]), timeout=30)
        r.raise_for_status()
        tenant["template_id"] = r.json()["id"]
        return tenant

    def wait_replicated(self, tenants: list[dict], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for t in tenants:
            while requests.get(f"{self.urls['scheduler']}/api/campaigns",
                               headers=auth(t["api_key"]), timeout=10).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("tenants did not reach the scheduler")
                time.sleep(0.2)

    def seed_subscribers(self, tenants: list[dict], n: int, rounds: int = 22) -> None:
        """Bulk-load the audience straight into the scheduler's schema (set-up, not measured)."""
        from services.scheduler.models import Subscriber

        engine = make_engine(self.database_url, "scheduler")
        now = dt.datetime.now(dt.timezone.utc)
        with engine.begin() as conn:
            batch = []
            for i in range(n):
                tenant = tenants[i % len(tenants)]
                batch.append({"id": str(uuid.uuid4()), "tenant_id": tenant["id"],
                              "phone": f"+447400{i:06d}",     # a valid mobile range
                              "language": ("cy", "en", None)[i % 3],
                              "attributes": {"name": f"Person {i}", "round": f"R{i % rounds}"},
                              "opted_out": False, "created_at": now, "updated_at": now})
                if len(batch) == 5000:
                    conn.execute(sa.insert(Subscriber), batch)
                    batch = []
            if batch:
                conn.execute(sa.insert(Subscriber), batch)
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
                        progress=None) -> dict:
        engine = make_engine(self.database_url, "notify")
        deadline = time.monotonic() + timeout
        done = 0
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                done = conn.execute(sa.text(
                    "SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL")).scalar()
                if progress:
                    progress(done, n)
                if done >= n:
                    break
                time.sleep(1.0)
            rows = conn.execute(sa.text(
                "SELECT extract(epoch from sent_at - :t0) FROM notifications "
                "WHERE sent_at IS NOT NULL ORDER BY 1"), {"t0": since}).scalars().all()
            total = conn.execute(sa.text("SELECT count(*) FROM notifications")).scalar()
        engine.dispose()
        return {"handed_off": done, "notifications": total,
                "latencies": [float(x) for x in rows]}

    def stop(self) -> None:
        self.stack.stop()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    s = sorted(values)

    def p(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)
    return {"p50": p(0.50), "p95": p(0.95), "p99": p(0.99), "max": round(s[-1], 3)}

"""The /ops page: what an on-call operator leaves open in a browser tab.

* ``GET /ops`` — queue depths and trends, dead letters, provider health,
  scheduler lag, the outbox and each tenant's volume today, as plain HTML
  tables (it works without JavaScript); ``ops.js`` then refreshes the figures
  from ``GET /ops/data.json`` every few seconds, without a reload.
* ``GET /ops/data.json`` — the same figures for machines and for ``hysbys
  status``: raw ``figures`` plus the ``tables`` and ``alerts`` as shown.

Only operators may look: ``Authorization: Bearer $HYSBYS_ADMIN_TOKEN``, or a
cookie set by signing in once with that token on the page (HttpOnly,
SameSite=Strict, signed with the admin token, so rotating the token signs
everyone out; renewed by every refresh, so a page left open stays signed in).

Every figure is read from where its truth is, at request time: queue depths
from the broker, provider health from ``provider_states`` (written by the
dispatchers), volumes from notify's own tables, scheduler lag from the
scheduler's ``/metrics`` (services never read each other's tables).  So any
notify API process shows the whole platform.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from itsdangerous import BadSignature, TimestampSigner
from prometheus_client.parser import text_string_to_metric_families

from services.notify.models import Notification, ProviderState
from shared import metrics, retention
from shared.crypto import constant_time_equals
from shared.db import Database, utcnow
from shared.errors import AuthError
from shared.metrics import CIRCUIT_STATES, METRICS
from shared.runtime import Runtime
from shared.tenancy import Tenant

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "ops_static"
COOKIE = "hysbys_ops"
SESSION_SECONDS = 12 * 3600       # renewed by every refresh: ends 12 h after the page is closed
REFRESH_SECONDS = 5
CACHE_SECONDS = 2.0               # several open pages cost one read of the broker and database
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


# -- figures, each read from where its truth is ------------------------------------

def provider_figures(db: Database, now: dt.datetime) -> list[dict]:
    """Provider health as the dispatchers last wrote it (``provider_states``)."""
    with db.read() as session:
        states = session.scalars(sa.select(ProviderState).order_by(ProviderState.provider)).all()
    return [{"provider": p.provider, "circuit": p.circuit, "recent_calls": p.recent_calls,
             "recent_errors": p.recent_errors,
             "error_rate": p.recent_errors / p.recent_calls if p.recent_calls else None,
             "latency_p50_ms": p.latency_p50_ms, "updated_at": p.updated_at.isoformat(),
             "age_seconds": max(0.0, (now - p.updated_at).total_seconds())} for p in states]


def tenants_today(db: Database, now: dt.datetime) -> list[dict]:
    """Notifications each tenant asked for since local midnight, by status."""
    start, _ = retention.day_bounds(retention.local_day(now))
    with db.read() as session:
        names = {t.id: (t.slug, t.name) for t in session.scalars(sa.select(Tenant))}
        # tenant_id IN (...) lets the (tenant_id, created_at) index serve the range
        counts = session.execute(
            sa.select(Notification.tenant_id, Notification.status, sa.func.count())
            .where(Notification.tenant_id.in_(list(names)), Notification.created_at >= start)
            .group_by(Notification.tenant_id, Notification.status)).all() if names else []
    out: dict[str, dict] = {}
    for tenant_id, status, count in counts:
        slug, name = names[tenant_id]
        row = out.setdefault(tenant_id, {"slug": slug, "name": name, "requested": 0,
                                         "by_status": {}})
        row["by_status"][status] = count
        row["requested"] += count
    return sorted(out.values(), key=lambda r: (-r["requested"], r["slug"]))


def scheduler_lag(url: str, timeout: float = 1.0) -> dict:
    """``hysbys_scheduler_lag_seconds`` from the scheduler's ``/metrics``."""
    try:
        # the operator's HYSBYS_SCHEDULER_URL + /metrics, never a caller's URL
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # nosec B310
            text = resp.read().decode("utf-8")
    except (OSError, ValueError) as exc:
        return {"lag_seconds": None, "error": f"cannot read {url}: {exc}"}
    for family in text_string_to_metric_families(text):
        if family.name == "hysbys_scheduler_lag_seconds" and family.samples:
            return {"lag_seconds": max(s.value for s in family.samples), "error": None}
    return {"lag_seconds": None, "error": f"{url} does not report hysbys_scheduler_lag_seconds"}


class OpsBoard:
    """Collects the figures, keeps the samples for rates, and caches for a moment."""

    def __init__(self, runtime: Runtime, scheduler_metrics_url: str, *,
                 cache_seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.runtime = runtime
        self.scheduler_metrics_url = scheduler_metrics_url
        self.cache_seconds = cache_seconds
        self.clock = clock
        # a queue's trend is its last 20 s (is it draining now?); throughput, the last minute
        self.queue_rates = metrics.Rates(window=20.0, clock=clock)
        self.flow_rates = metrics.Rates(window=60.0, clock=clock)
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def snapshot(self) -> dict:
        with self._lock:
            if self._cached and self.clock() - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            data = self._collect()
            self._cached = (self.clock(), data)
            return data

    def _collect(self) -> dict:
        now = utcnow()
        problems: list[str] = []
        queues, retries = _attempt(lambda: metrics.queue_figures(self.runtime.bus), ([], []),
                                   problems, "the broker")
        changes = self.queue_rates.observe({q["name"]: q["ready"] for q in queues})
        for q in queues:
            q["change_per_minute"] = changes.get(q["name"])
        tenants = _attempt(lambda: tenants_today(self.runtime.db, now), [], problems,
                           "today's notifications")
        today = totals(tenants)
        backlog, age = _attempt(self.runtime.relay.backlog, (None, None), problems, "the outbox")
        figures = {
            "generated_at": now.isoformat(),
            "broker": "memory" if self.runtime.bus.is_memory else "rabbitmq",
            "queues": queues, "retry_queues": retries,
            "providers": _attempt(lambda: provider_figures(self.runtime.db, now), [], problems,
                                  "provider health"),
            "scheduler": scheduler_lag(self.scheduler_metrics_url),
            "outbox": {"service": self.runtime.service, "backlog": backlog,
                       "oldest_age_seconds": age},
            "tenants_today": tenants, "totals_today": today,
            "throughput_per_minute": self.flow_rates.observe(today, counters=True),
            "refresh_seconds": REFRESH_SECONDS,
        }
        figures["alerts"] = alerts(figures, problems)
        figures["tables"] = tables(figures)
        return figures


def _attempt(read: Callable, default, problems: list[str], what: str):
    """One section's figures; a failure is shown on the page instead of failing it all."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - reported as a problem on the page
        log.warning("ops: could not read %s", what, exc_info=True)
        problems.append(f"Could not read {what}: {type(exc).__name__}")
        return default


# -- how the figures are shown (the page, its JS and `hysbys status` share this) ----

PENDING = ("created", "sending", "deferred")
SENT = ("sent", "delivered", "permanent-failure", "temporary-failure")
FAILED = ("permanent-failure", "temporary-failure", "technical-failure")
TENANT_STATUSES = ("created", "deferred", "sending", "sent", "delivered", "failed", "suppressed")
DLQ_ADVICE = "hysbys dlq list --queue {queue}"
LAG_LIMIT, OUTBOX_AGE_LIMIT, ERROR_RATE_LIMIT = 600, 300, 0.2   # as deploy/prometheus/alerts.yml


def totals(tenants: list[dict]) -> dict[str, int]:
    """Today's counts over every tenant: requested, sent, delivered, failed."""
    out = {"requested": 0, "sent": 0, "delivered": 0, "failed": 0}
    for t in tenants:
        by = t["by_status"]
        out["requested"] += t["requested"]
        out["sent"] += sum(by.get(s, 0) for s in SENT)
        out["delivered"] += by.get("delivered", 0)
        out["failed"] += sum(by.get(s, 0) for s in FAILED)
    return out


def alerts(f: dict, problems: list[str]) -> list[dict]:
    """What needs an operator now, most urgent first, with what to do."""
    out = [{"level": "critical", "text": p} for p in problems]
    for q in f["queues"]:
        if q["dead_lettered"]:
            out.append({"level": "warning", "text": f"{q['dlq']} holds {q['dead_lettered']:,} "
                        f"dead-lettered message(s): {DLQ_ADVICE.format(queue=q['name'])}"})
        if q["consumers"] == 0:
            out.append({"level": "critical", "text": f"Nothing is consuming {q['name']}: "
                        f"start `hysbys worker {q['service']}`"})
    for p in f["providers"]:
        if p["circuit"] != "closed":
            out.append({"level": "critical", "text": f"Provider {p['provider']}: circuit "
                        f"{p['circuit']}, sends are failing over"})
        elif (p["error_rate"] or 0) > ERROR_RATE_LIMIT and p["recent_calls"] >= 10:
            out.append({"level": "warning", "text": f"Provider {p['provider']} failed "
                        f"{p['error_rate']:.0%} of its calls in the last minute"})
    lag = f["scheduler"]["lag_seconds"]
    if lag is None:
        out.append({"level": "warning", "text": f"Scheduler lag unknown: {f['scheduler']['error']}"})
    elif lag > LAG_LIMIT:
        out.append({"level": "critical", "text": f"Reminders are going out {duration(lag)} late"})
    age = f["outbox"]["oldest_age_seconds"]
    if age is not None and age > OUTBOX_AGE_LIMIT:
        out.append({"level": "critical", "text": f"The notify outbox's oldest event is "
                    f"{duration(age)} old: is the relay running?"})
    return sorted(out, key=lambda a: a["level"] != "critical")


def tables(f: dict) -> list[dict]:
    """The page's tables as data: a caption, columns, and rows of cells (first is the row header)."""
    return [t for t in (_overview(f), _queues(f), _retries(f), _providers(f), _tenants(f)) if t]


def _table(id_: str, caption: str, columns: list[str], rows: list[list[dict]], empty: str,
           numeric_from: int = 1) -> dict:
    return {"id": id_, "caption": caption, "empty": empty, "rows": rows,
            "columns": [{"label": c, "numeric": i >= numeric_from} for i, c in enumerate(columns)]}


def _cell(text, tag: str | None = None) -> dict:
    return {"text": text, "tag": tag}


def _overview(f: dict) -> dict:
    waiting = sum(q["ready"] or 0 for q in f["queues"])
    dead = sum(q["dead_lettered"] or 0 for q in f["queues"])
    lag, flow = f["scheduler"]["lag_seconds"], f["throughput_per_minute"]
    out = f["outbox"]
    rows = [
        [_cell("Messages waiting in queues"), _cell(number(waiting))],
        [_cell("Dead-lettered messages"), _cell(number(dead), "red" if dead else "green")],
        [_cell("Notifications requested today"), _cell(number(f["totals_today"]["requested"]))],
        [_cell("Requested per minute"), _cell(per_minute(flow.get("requested")))],
        [_cell("Sent per minute"), _cell(per_minute(flow.get("sent")))],
        [_cell("Delivered per minute"), _cell(per_minute(flow.get("delivered")))],
        [_cell("Scheduler lag"), _cell("unknown" if lag is None else duration(lag),
                                       "grey" if lag is None else "red" if lag > LAG_LIMIT else None)],
        [_cell(f"Outbox waiting to publish ({out['service']})"), _cell(
            "unknown" if out["backlog"] is None else
            f"{number(out['backlog'])} (oldest {duration(out['oldest_age_seconds'] or 0)})")],
    ]
    return _table("overview", "At a glance", ["Figure", "Value"], rows, "")


def _queues(f: dict) -> dict:
    rows = [[_cell(q["name"]), _cell(q["service"]), _cell(number(q["ready"])),
             _cell("n/a" if q["consumers"] is None and f["broker"] == "memory" else
                   number(q["consumers"]), "red" if q["consumers"] == 0 else None),
             _cell(per_minute(q["change_per_minute"], signed=True)),
             _cell(number(q["dead_lettered"]), "red" if q["dead_lettered"] else None)]
            for q in f["queues"]]
    return _table("queues", "Queues", ["Queue", "Service", "Ready", "Consumers",
                                       "Change per minute", "Dead-lettered"], rows,
                  "The broker could not be read.", numeric_from=2)


def _retries(f: dict) -> dict | None:
    if not f["retry_queues"]:
        return None
    rows = [[_cell(r["name"]), _cell(number(r["ready"]))] for r in f["retry_queues"]]
    return _table("retries", "Retries waiting", ["Delay queue", "Messages"], rows, "")


def _providers(f: dict) -> dict:
    tags = {"closed": "green", "half-open": "yellow", "open": "red"}
    rows = [[_cell(p["provider"]), _cell(p["circuit"].capitalize(), tags.get(p["circuit"])),
             _cell(number(p["recent_calls"])), _cell(number(p["recent_errors"])),
             _cell("–" if p["error_rate"] is None else f"{p['error_rate']:.1%}"),
             _cell("–" if p["latency_p50_ms"] is None else f"{p['latency_p50_ms']:,.0f} ms"),
             _cell(f"{duration(p['age_seconds'])} ago")] for p in f["providers"]]
    return _table("providers", "Providers", ["Provider", "Circuit", "Calls (last minute)",
                                             "Errors", "Error rate", "Latency (median)",
                                             "Last report"], rows,
                  "No provider has reported yet: dispatchers report once they send.",
                  numeric_from=2)


def _tenants(f: dict) -> dict:
    rows = []
    for t in f["tenants_today"]:
        by = t["by_status"]
        counts = {**by, "failed": sum(by.get(s, 0) for s in FAILED)}
        rows.append([_cell(t["slug"]), _cell(number(t["requested"]))]
                    + [_cell(number(counts.get(s, 0))) for s in TENANT_STATUSES])
    return _table("tenants", "Volume today, by tenant",
                  ["Tenant", "Requested"] + [s.capitalize() for s in TENANT_STATUSES], rows,
                  "Nothing requested today yet.")


def number(n: int | float | None) -> str:
    return "unknown" if n is None else f"{n:,}"


def per_minute(rate: float | None, signed: bool = False) -> str:
    if rate is None:
        return "measuring"
    text = f"{abs(rate):,.0f}/min"
    if signed and round(rate):
        return ("+" if rate > 0 else "−") + text
    return text


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


# -- /metrics: gauges read at scrape time ------------------------------------------

def refresh_provider_gauges(db: Database, now: dt.datetime | None = None) -> None:
    """``hysbys_provider_circuit_state`` and friends, from ``provider_states``."""
    for p in provider_figures(db, now or utcnow()):
        for state in CIRCUIT_STATES:
            METRICS.provider_circuit.labels(p["provider"], state).set(
                1 if p["circuit"] == state else 0)
        if p["error_rate"] is not None:
            METRICS.provider_error_ratio.labels(p["provider"]).set(p["error_rate"])
        METRICS.provider_state_age.labels(p["provider"]).set(p["age_seconds"])


def gauges(runtime: Runtime) -> list[Callable[[], None]]:
    """The scrape-time gauges notify adds to its ``Runtime.gauges``."""
    return [lambda: refresh_provider_gauges(runtime.db),
            lambda: metrics.refresh_queue_gauges(runtime.bus)]


# -- the blueprint -----------------------------------------------------------------

def blueprint(runtime: Runtime, *, scheduler_metrics_url: str | None = None,
              board: OpsBoard | None = None) -> Blueprint:
    """``/ops``, ``/ops/data.json``, sign-in and sign-out, and the page's own CSS and JS."""
    url = scheduler_metrics_url or f"http://127.0.0.1:{runtime.settings.ports['scheduler']}/metrics"
    board = board or OpsBoard(runtime, url)
    blp = Blueprint("ops", __name__, url_prefix="/ops", static_folder=str(STATIC / "assets"),
                    static_url_path="/static", template_folder=str(STATIC / "templates"))
    signer = TimestampSigner(runtime.settings.admin_token, salt="hysbys-ops",
                             digest_method=hashlib.sha256)

    def caller() -> str | None:
        """"bearer" or "cookie" for an operator, None for anyone else (403 for a wrong bearer)."""
        header = request.headers.get("Authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and constant_time_equals(token.strip(),
                                                                   runtime.settings.admin_token):
                return "bearer"
            raise AuthError("Invalid token: not the platform admin token", 403)
        try:
            signer.unsign(request.cookies.get(COOKIE, ""), max_age=SESSION_SECONDS)
            return "cookie"
        except BadSignature:
            return None

    def with_session(resp: Response) -> Response:
        resp.set_cookie(COOKIE, signer.sign(b"operator").decode(), max_age=SESSION_SECONDS,
                        path="/ops", httponly=True, samesite="Strict", secure=request.is_secure)
        return resp

    def login_page(status: int, error: str | None = None):
        return render_template("ops/login.html", error=error), status

    @blp.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.update(SECURITY_HEADERS)
        if request.endpoint != "ops.static":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @blp.get("")
    def page():
        """The operator's page (a sign-in form until signed in)"""
        who = caller()
        if who is None:
            return login_page(401)
        return render_template("ops/page.html", data=board.snapshot(),
                               source=url_for("ops.data"), interval=REFRESH_SECONDS)

    @blp.post("/login")
    def login():
        token = (request.form.get("token") or "").strip()
        if not token:
            return login_page(400, "Enter the platform admin token")
        if not constant_time_equals(token, runtime.settings.admin_token):
            return login_page(403, "That is not the platform admin token")
        return with_session(redirect(url_for("ops.page"), 303))

    @blp.post("/logout")
    def logout():
        resp = redirect(url_for("ops.page"), 303)
        resp.delete_cookie(COOKIE, path="/ops", httponly=True, samesite="Strict")
        return resp

    @blp.get("/data.json")
    def data():
        """Every figure on the page, as JSON"""
        who = caller()
        if who is None:
            raise AuthError("Unauthorized: sign in at /ops or send the admin token", 401)
        resp = jsonify(board.snapshot())
        return with_session(resp) if who == "cookie" else resp

    return blp

"""fairness: a health board's urgent reminder while a council's bin night is sending.

One council broadcasts to N subscribers (50,000 by default), due at once.  From
the moment it is due until its last hand-off, a health board posts an urgent
appointment reminder through the API (``POST /v2/notifications/sms`` with
``"urgent": true``) every half second.  Each one's figure is its provider
hand-off (``sent_at`` in notify's table) minus the moment the request was sent.

Comparison points, in the same run:

* **peer** - GOV.UK Notify's design has one FIFO queue per task type: the same
  urgent message, inserted as a row and published as a task every half second
  while the peer works through the same broadcast, measured the same way;
* **limit** - the platform's own floor: the same urgent POSTs on the same
  stack with nothing else to send, just before the broadcast is due.

Goal: p99 under 1 s (issue 16; 2 s before).
"""
from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
from collections.abc import Callable

import requests

from bench import env, peer_celery
from bench.common import Goal, envelope, log, progress, ratio
from bench.platform_run import Platform, auth, percentiles
from bench.scenarios import log_path, peer_figures, sending_figures, size

EVERY = 0.5              # seconds between urgent reminders
IDLE_SECONDS = 10.0      # urgent reminders on the idle stack, for the limit
SETTLE = 60.0            # how long the last urgent reminders get to be handed off
GOAL_P99 = 1.0
APPOINTMENT = {"name": "Appointment", "type": "sms", "body": {
    "cy": "Atgoffa: apwyntiad ((clinic)) yfory am ((time)). Atebwch 1 i gadarnhau.",
    "en": "Reminder: ((clinic)) appointment tomorrow at ((time)). Reply 1 to confirm."}}
URGENT_BODY = "Reminder: renal clinic appointment tomorrow at 09:30. Reply 1 to confirm."
COUNCIL_BODY = "Helo Person, casgliad biniau yfory: rownd R1."


class Poster:
    """Calls ``send`` every ``EVERY`` seconds on a thread, noting (id, moment sent)."""

    def __init__(self, send: Callable[[int], str | None]):
        self.send = send
        self.sent: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, start_at: float, until: float | None = None) -> None:
        i = 0
        while not self._stop.is_set() and (until is None or time.time() < until):
            due = start_at + i * EVERY
            if self._stop.wait(max(0.0, due - time.time())):
                return
            t = time.time()
            try:
                ident = self.send(i)
            except Exception as exc:  # noqa: BLE001 - a failed request is a figure, not a crash
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            else:
                if ident:
                    self.sent.append((ident, t))
            i += 1

    def start(self, start_at: float) -> None:
        self._thread = threading.Thread(target=self.run, args=(start_at,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)


def _urgent_poster(p: Platform, board: dict, template_id: str) -> Poster:
    session = requests.Session()
    errors: list[str] = []

    def send(i: int) -> str | None:
        r = session.post(f"{p.urls['notify']}/v2/notifications/sms", headers=auth(board["api_key"]),
                         timeout=10, json={"phone_number": f"+447401{i:06d}", "urgent": True,
                                           "template_id": template_id, "reference": f"appt-{i}",
                                           "personalisation": {"clinic": "renal", "time": "09:30"}})
        if r.status_code != 201:
            errors.append(f"{r.status_code} {r.text[:120]}")
            return None
        return r.json()["id"]
    poster = Poster(send)
    poster.errors = errors
    return poster


def _settle(handoffs: Callable[[list[str]], dict], sent: list[tuple[str, float]]) -> dict:
    """Wait (up to SETTLE s) for every urgent reminder's hand-off; then the figures."""
    ids = [i for i, _ in sent]
    deadline = time.monotonic() + SETTLE
    found = handoffs(ids)
    while any(v is None for v in found.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
        found = handoffs(ids)
    lat = [_epoch(found[i]) - t for i, t in sent if found[i] is not None]
    return {"sent": len(sent), "handed_off": len(lat), "not_handed_off": len(sent) - len(lat),
            "request_to_handoff_seconds": percentiles(lat),
            "latencies_seconds": [round(x, 4) for x in lat]}


def _epoch(value) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def platform_fairness(n: int, log_dir: str | None) -> tuple[dict, dict]:
    """The platform's urgent figures during the broadcast, and on the idle stack (the limit)."""
    started = time.monotonic()
    with env.vhost() as amqp, env.database() as db:
        p = Platform.start(db, amqp, log_dir=log_dir)
        try:
            council = p.create_tenant("council-big",
                                      capacity={"segments_per_second": 1000, "senders": 100})
            board = p.create_tenant("health-board", rate_limit_per_minute=1_000_000,
                                    daily_message_limit=10_000_000)
            template_id = p.create_template(board, APPOINTMENT)
            p.wait_replicated([council])
            p.seed_subscribers([council], n)

            log(f"  limit: urgent reminders on the idle stack for {IDLE_SECONDS:.0f} s")
            idle = _urgent_poster(p, board, template_id)
            idle.run(time.time(), until=time.time() + IDLE_SECONDS)
            limit = {**_settle(p.handoff_times, idle.sent), "request_errors": idle.errors}

            due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)
            p.schedule_broadcasts([council], due)
            busy = _urgent_poster(p, board, template_id)
            busy.start(due.timestamp())
            try:
                outcome = p.wait_handed_off(n, due, tenant_id=council["id"],
                                            progress=progress("platform broadcast"))
            finally:
                busy.stop()
            urgent = {**_settle(p.handoff_times, busy.sent), "request_errors": busy.errors}
            calls = p.proc("notify-dispatcher").metric("hysbys_provider_calls_total",
                                                   {"provider": "simulator"})
            everything = p.wait_handed_off(0, due)      # the broadcast and every urgent one
            broadcast = sending_figures(outcome, calls, p.stack, time.monotonic() - started)
            broadcast["provider_calls_per_notification"] = round(
                calls / max(1, everything["handed_off"]), 3)
            return {"urgent": urgent, "broadcast": broadcast,
                    "provider_calls_per_notification": broadcast["provider_calls_per_notification"]
                    }, limit
        finally:
            p.stop()


def peer_fairness(n: int, log_dir: str | None) -> dict:
    """The peer's urgent figures: single rows and tasks behind the broadcast on its one queue."""
    with env.vhost() as amqp, env.database() as db:
        peer_celery.prepare(db)
        workers = peer_celery.start_workers(db, amqp, concurrency=2,
                                             log_path=log_path(log_dir, "peer"))
        one = None
        try:
            time.sleep(3)
            one = peer_celery.OneAtATime(db, amqp)
            poster = Poster(lambda i: one.send("health-board", f"+447401{i:06d}", URGENT_BODY))
            recipients = [("council-big", f"+447400{i:06d}", COUNCIL_BODY) for i in range(n)]
            poster.start(time.time())
            try:
                t0 = peer_celery.fire(db, amqp, recipients)
                out = peer_celery.wait_done(db, n, t0, tenant="council-big",
                                            progress=progress("peer broadcast"))
            finally:
                poster.stop()
            urgent = {**_settle(lambda ids: peer_celery.handoff_times(db, ids), poster.sent),
                      "request_errors": poster.errors}
            return {"urgent": urgent, "broadcast": peer_figures(out, n, t0)}
        finally:
            if one is not None:
                one.close()
            peer_celery.stop_workers(workers)


def fairness(n: int | None = None) -> dict:
    """The scenario: platform (busy and idle) and peer, the same urgent message."""
    n = n or size(50_000)
    log_dir = tempfile.mkdtemp(prefix="hysbys-bench-fairness-")
    log(f"fairness: a {n:,}-subscriber broadcast and an urgent reminder every {EVERY} s "
        f"(process logs in {log_dir})")
    platform, limit = platform_fairness(n, log_dir)
    peer = peer_fairness(n, log_dir)
    p99 = platform["urgent"]["request_to_handoff_seconds"].get("p99")
    peer_p99 = peer["urgent"]["request_to_handoff_seconds"].get("p99")
    limit_p99 = limit["request_to_handoff_seconds"].get("p99")
    goals = [Goal("urgent_p99_seconds", p99, GOAL_P99, at_least=False, unit=" s"),
             Goal("urgent_not_handed_off", platform["urgent"]["not_handed_off"], 1, at_least=False),
             Goal("urgent_request_errors", len(platform["urgent"]["request_errors"]), 1,
                  at_least=False),
             Goal("broadcast_handed_off", platform["broadcast"]["handed_off"], n)]
    return envelope(
        "fairness", env.machine(), platform, peer, limit,
        ratio_vs_peer=ratio(peer_p99, p99), ratio_vs_limit=ratio(limit_p99, p99), goals=goals,
        subscribers=n, every_seconds=EVERY, log_dir=log_dir,
        summary={"metric": "urgent reminder, request → provider hand-off, p99",
                 "platform": _s(p99) + f" (p50 {_s(_p(platform, 'p50'))}, max {_s(_p(platform, 'max'))})",
                 "peer": _s(peer_p99) + f" (max {_s(_p(peer, 'max'))})",
                 "limit": _s(limit_p99) + " (idle stack)",
                 "goal": f"p99 < {GOAL_P99:g} s",
                 "ratio_note": "peer p99 ÷ platform p99; idle p99 ÷ busy p99"})


def _p(side: dict, q: str) -> float | None:
    return side["urgent"]["request_to_handoff_seconds"].get(q)


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"

"""The platform as separate processes, the way docker-compose runs it, with RSS sampling."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict
    metrics_port: int | None = None
    popen: subprocess.Popen | None = None
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    log_path: str | None = None

    def start(self) -> None:
        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        # its own process group, so a stop that has to kill takes gunicorn's workers too
        self.popen = subprocess.Popen([sys.executable, "-m", "services.cli", *self.argv],
                                      env=self.env, stdout=log, stderr=log,
                                      start_new_session=True)
        if log is not subprocess.DEVNULL:
            log.close()     # the child has its own copy

    def sample(self) -> None:
        """Note the RSS of the process and its children (a gunicorn master and its workers
        are one service: the figure is what the service costs)."""
        try:
            procs = [psutil.Process(self.popen.pid)]
            procs += procs[0].children(recursive=True)
        except (psutil.Error, AttributeError):
            return
        rss, cpu = 0, 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system
        self.peak_rss = max(self.peak_rss, rss)
        self.cpu_seconds = max(self.cpu_seconds, cpu)

    def metric(self, name: str, labels: dict | None = None) -> float:
        """Sum of a metric's samples (matching ``labels``) from the process's /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in (labels or {}).items()):
                    total += sample.value
        return total

    def terminate(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()

    def stop(self, grace: float = 10) -> None:
        """Wait up to ``grace`` seconds for a terminated process, then kill its group."""
        if not self.popen:
            return
        self.terminate()
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


@dataclass
class Stack:
    """Workers, ticker and APIs as their own processes, sharing one env."""

    env: dict
    procs: list[Proc] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None
    _profilers: list[subprocess.Popen] = field(default_factory=list)

    def add(self, name: str, argv: list[str], *, metrics: bool = True, log_dir: str | None = None
            ) -> Proc:
        port = free_port() if metrics else None
        env = {**self.env, **({"HYSBYS_METRICS_PORT": str(port)} if port else {})}
        p = Proc(name, argv, env, port, log_path=f"{log_dir}/{name}.log" if log_dir else None)
        self.procs.append(p)
        return p

    def start(self) -> None:
        for p in self.procs:
            p.start()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            for p in self.procs:
                p.sample()

    def wait_http(self, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=1).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{url} did not come up")

    def profile(self, names: list[str], out_dir: str, seconds: int,
                fmt: str = "flamegraph") -> None:
        """Sample the named services with py-spy for ``seconds`` into ``out_dir`` (``fmt``:
        flamegraph SVG, raw collapsed stacks, or speedscope JSON).  Costs CPU: only for
        finding a hot path, never in a recorded run."""
        suffix = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[fmt]
        for p in self.procs:
            if p.name in names and p.popen:
                self._profilers.append(subprocess.Popen(
                    [str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                     str(p.popen.pid), "--subprocesses", "--duration", str(seconds), "--rate", "50",
                     "--format", fmt, "--output", f"{out_dir}/{p.name}.{suffix}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        self._stop.set()
        for profiler in self._profilers:      # py-spy writes its file when it stops
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.send_signal(signal.SIGINT)
                profiler.wait(20)
            if profiler.poll() is None:
                profiler.kill()
        for p in self.procs:      # all at once: a slow one does not hold up the rest
            p.terminate()
        deadline = time.monotonic() + 10
        for p in self.procs:
            p.stop(grace=max(0.1, deadline - time.monotonic()))

    def peak_rss_mb(self) -> dict[str, float]:
        return {p.name: round(p.peak_rss / 2**20, 1) for p in self.procs}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each service has used so far, children included:
        where the machine's time went."""
        for p in self.procs:
            p.sample()
        return {p.name: round(p.cpu_seconds, 1) for p in self.procs}


# The shared servers under the platform: their CPU is the platform's too (each durable
# event is PostgreSQL and RabbitMQ work), so CPU per notification counts them.
SERVERS = {"postgresql": ("postgres",), "rabbitmq": ("beam.smp", "erl_child_setup", "epmd")}


def server_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) PostgreSQL and RabbitMQ have used so far, read from the
    kernel's per-process counters: every process of each server, plus what its exited
    children used (PostgreSQL's backends come and go; the postmaster reaps them).  A
    difference of two readings is what a run cost them; other clients of the same servers
    (none while a benchmark runs) would be counted too."""
    totals = dict.fromkeys(SERVERS, 0.0)
    for proc in psutil.process_iter(["name"]):
        for server, names in SERVERS.items():
            if proc.info["name"] in names:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    totals[server] += t.user + t.system + t.children_user + t.children_system
    return totals


def cpu_per_notification(before: dict[str, float], after: dict[str, float],
                         notifications: int) -> dict[str, float]:
    """Milliseconds of CPU each process (and PostgreSQL, RabbitMQ) spent per notification
    between the broadcasts being scheduled and the last hand-off, and their ``total``."""
    per = {name: round((after[name] - before.get(name, 0.0)) * 1000 / max(1, notifications), 3)
           for name in after}
    per["total"] = round(sum(per.values()), 3)
    return per


def platform_env(database_url: str, broker_url: str, secret_key: str, admin_token: str,
                 ports: dict[str, int]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYSBYS_")}
    env.update({
        "HYSBYS_DATABASE_URL": database_url, "HYSBYS_BROKER_URL": broker_url,
        "HYSBYS_SECRET_KEY": secret_key, "HYSBYS_ADMIN_TOKEN": admin_token,
        "HYSBYS_NOTIFY_PORT": str(ports["notify"]), "HYSBYS_INBOUND_PORT": str(ports["inbound"]),
        "HYSBYS_SCHEDULER_PORT": str(ports["scheduler"]), "HYSBYS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.getcwd(),
    })
    return env


def peer_cpu_seconds(workers) -> dict[str, float]:
    """CPU seconds so far of the peer's parts: the Celery workers (the prefork parent and
    its children), the firing (this process: it inserts the rows and publishes the tasks,
    then only polls a count), PostgreSQL and RabbitMQ."""
    celery = 0.0
    try:
        procs = [psutil.Process(workers.pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        procs = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()        # a pool child that exited is in its parent's children_*
            celery += t.user + t.system + t.children_user + t.children_system
    own = psutil.Process().cpu_times()
    return {"celery-workers": celery, "fire (bench process)": own.user + own.system,
            **server_cpu_seconds()}

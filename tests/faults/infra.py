"""Breaking the shared local RabbitMQ and PostgreSQL, briefly, and always mending them.

Both servers are shared by every vhost and database on the machine (other test
runs, benchmarks), so each outage is kept short and every helper restores the
server in a ``finally`` — a failing test never leaves the broker stopped.
"""
from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse


def vhost_of(broker_url: str) -> str:
    return unquote(urlparse(broker_url).path.lstrip("/")) or "/"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come back within {timeout:.0f}s")
        time.sleep(0.2)


def close_broker_connections(broker_url: str) -> int:
    """Close every connection of this vhost from the broker's side; returns how many there were."""
    vhost = vhost_of(broker_url)
    listed = subprocess.run(["rabbitmqctl", "-q", "list_connections", "-p", vhost, "name"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    count = len([line for line in listed if line.strip() and line.strip() != "name"])
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost,
                    "hysbys fault test: connections closed by the broker"],
                   check=True, capture_output=True)
    return count


@contextlib.contextmanager
def broker_stopped() -> Iterator[None]:
    """``rabbitmqctl stop_app`` for the duration of the block, then ``start_app`` — always."""
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
    try:
        yield
    finally:
        ensure_broker_up()


def ensure_broker_up() -> None:
    subprocess.run(["rabbitmqctl", "-q", "start_app"], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], capture_output=True, timeout=120)
    _wait(lambda: _listening(5672), "RabbitMQ")


def _cluster() -> list[str]:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def restart_postgres() -> None:
    """Restart the local PostgreSQL cluster (every open connection is dropped)."""
    try:
        subprocess.run([*_cluster(), "restart", "-m", "fast"], check=True, capture_output=True,
                       timeout=120)
    finally:
        ensure_postgres_up()


def ensure_postgres_up() -> None:
    def ready() -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0

    if not ready():
        subprocess.run([*_cluster(), "start"], capture_output=True, timeout=120)
    _wait(ready, "PostgreSQL", timeout=120)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "16m") -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only: CI and the dev machines run as root)."""
    import os

    if os.geteuid() != 0:
        raise RuntimeError("the storage fault tests mount a tmpfs and need root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, mode: str) -> None:
    """``mode`` "ro" or "rw"; remounting read-only needs no file open for writing."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)


def fill(path: Path) -> Path:
    """Fill the file system under ``path`` to the last byte; returns the filler to delete."""
    filler = path / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler

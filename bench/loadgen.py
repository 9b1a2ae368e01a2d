"""An open-loop HTTP load generator for 127.0.0.1, bounded in count and time.

Requests are scheduled at a fixed offered rate and each latency is measured from
the moment the request *should* have been sent (no coordinated omission: a slow
server makes later requests late, and that lateness counts).  Connections are
kept alive; request bytes are prepared by the caller (so signing costs nothing
at send time).  Refuses any host that is not loopback.
"""
from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_SECONDS = 30.0


@dataclass
class StepResult:
    offered_rps: float
    achieved_rps: float
    sent: int
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def held(self) -> bool:
        return (self.errors == 0 and self.achieved_rps >= 0.95 * self.offered_rps
                and self.p99_ms < 100.0)


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False     # a host name other than localhost could resolve anywhere
    if not loopback:
        raise ValueError(f"load tests only target loopback addresses, not {host}")


class StaleConnection(ConnectionError):
    """The server had closed the kept-alive connection before this request reached it."""


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise StaleConnection("closed before any response")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _step(host: str, port: int, make_request: Callable[[int], bytes], rate: float,
                seconds: float, connections: int, ok_status: tuple[int, ...],
                first: int = 0) -> StepResult:
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    start = time.perf_counter() + 0.2

    async def conn_worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                i, due = item
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                request = make_request(i)
                try:
                    try:
                        writer.write(request)
                        status = await asyncio.wait_for(_read_response(reader), 10)
                    except StaleConnection:
                        # an idle keep-alive the server let go: reconnect and send it again,
                        # the reconnection counting in its latency (as for any client)
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                        writer.write(request)
                        status = await asyncio.wait_for(_read_response(reader), 10)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                if status in ok_status:
                    latencies.append(time.perf_counter() - due)
                else:
                    errors += 1
        finally:
            writer.close()

    for i in range(total):
        queue.put_nowait((first + i, start + i / rate))
    # each connection busy enough (>= 4 requests/s) that the server's keep-alive
    # (gunicorn's default is 2 s) never closes it between two requests; rate/4 is
    # still more than the rate/10 in flight that a step held at p99 < 100 ms needs
    connections = max(1, min(connections, int(rate / 4)))
    for _ in range(connections):
        queue.put_nowait(None)
    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(conn_worker() for _ in range(connections))),
                           timeout=seconds + MAX_SECONDS)
    elapsed = max(time.perf_counter() - max(began, start), 1e-9)
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) \
            if latencies else float("inf")
    return StepResult(rate, round(len(latencies) / elapsed, 1), total, len(latencies), errors,
                      pct(0.50), pct(0.99))


def ramp(host: str, port: int, make_request: Callable[[int], bytes], rates: list[float], *,
         seconds: float = 5.0, connections: int = 64, ok_status: tuple[int, ...] = (200, 201),
         warm_up: float = 2.0, log: Callable[[str], None] = print, first: int = 0) -> dict:
    """Offer each rate in turn; stop after the first step that is not held.

    First ``warm_up`` seconds at the lowest rate, not recorded: the server's threads
    open their connections and fill their caches before the clock matters.  Every
    request gets its own index (``make_request(i)``), never reused across steps, so
    a request that must be unique (a webhook's message id) is; a second ramp against
    the same server starts at ``first`` (the first ramp's ``next_index``)."""
    _check_loopback(host)
    sent, warm_ok = first, 0
    if rates and warm_up > 0:
        warm = asyncio.run(_step(host, port, make_request, rates[0], warm_up, connections,
                                 ok_status, first=sent))
        sent += warm.sent
        warm_ok = warm.ok
    steps: list[StepResult] = []
    for rate in rates:
        result = asyncio.run(_step(host, port, make_request, rate, seconds, connections,
                                   ok_status, first=sent))
        sent += result.sent
        steps.append(result)
        log(f"    offered {rate:>6.0f}/s  achieved {result.achieved_rps:>7.1f}/s  "
            f"p50 {result.p50_ms:>7.1f} ms  p99 {result.p99_ms:>7.1f} ms  errors {result.errors}")
        if not result.held:
            break
    held = [s for s in steps if s.held]
    return {"max_rate_held_rps": held[-1].achieved_rps if held else 0.0,
            "accepted": warm_ok + sum(s.ok for s in steps), "next_index": sent,
            "steps": [s.__dict__ for s in steps]}

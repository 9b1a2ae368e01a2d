"""A lane per remote provider: its hand-offs run in a thread of their own.

A slow or hanging provider then holds up only the rows that go to it first: the
dispatcher gives each lane its chunks and claims again without waiting, and
``claim`` leaves a row ``created`` (no attempt spent) while its first provider's
lane is busy.  In-process providers (the simulator) cannot hang: :func:`remote` is
False for them, and their rows are handed off in the dispatcher's own thread.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from services.notify.providers.base import Provider

log = logging.getLogger(__name__)


def remote(provider: Provider) -> bool:
    """Whether the provider is called over the network (and so gets a lane, a circuit
    breaker, a throttle and health figures)."""
    return getattr(provider, "remote", True)


class Lane:
    """One provider's hand-offs, one at a time, in a thread of their own.

    The thread starts when work arrives and ends when the lane is empty, so an idle
    provider costs nothing; ``on_idle`` wakes the dispatcher to claim that
    provider's rows again.
    """

    def __init__(self, name: str, on_idle: Callable[[], None] = lambda: None):
        self.name = name
        self.on_idle = on_idle
        self._jobs: deque[tuple[Callable[[], None], Future]] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        with self._lock:
            self._jobs.append((lambda: fn(*args), future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"notify-lane-{self.name}",
                                                daemon=True)
                self._thread.start()
        return future

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    break
                job, future = self._jobs.popleft()
            future.set_running_or_notify_cancel()
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the lane
                log.exception("provider lane %s: a hand-off failed; its rows are left to the "
                              "sweeper", self.name)
                future.set_exception(exc)
        self.on_idle()


class Lanes:
    """The dispatcher's lanes by provider name, each made when its provider first has work."""

    def __init__(self, on_idle: Callable[[], None] = lambda: None):
        self.on_idle = on_idle
        self._lanes: dict[str, Lane] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Lane:
        with self._lock:
            lane = self._lanes.get(name)
            if lane is None:
                lane = self._lanes[name] = Lane(name, on_idle=self.on_idle)
            return lane

    def busy(self, name: str) -> bool:
        lane = self._lanes.get(name)
        return lane is not None and lane.busy

    def busy_names(self) -> list[str]:
        return [name for name, lane in list(self._lanes.items()) if lane.busy]

    def join(self, deadline: float, clock: Callable[[], float]) -> None:
        """Wait for every lane until ``deadline`` (on ``clock``, a monotonic clock)."""
        for lane in list(self._lanes.values()):
            lane.join(max(0.0, deadline - clock()))

"""A small threaded HTTP server on 127.0.0.1 for faking a third-party API.

A subclass answers requests in :meth:`FakeServer.answer`; the test tells the
server how to behave next with :meth:`succeed`, :meth:`fail`, :meth:`slow` and
:meth:`hang` (one-shot answers queue up with ``times=``; the last sticky one
stays).  ``problems`` lists every check the server made that the client failed:
a test asserts it is empty.
"""
from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_LIMIT = 5.0     # a hanging answer never outlives the test by more than this


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict
    body: bytes


@dataclass(frozen=True)
class Behaviour:
    kind: str                      # "succeed" | "fail" | "slow" | "hang"
    status: int = 0
    payload: dict | None = None
    delay: float = 0.0


class FakeServer:
    def __init__(self):
        self.problems: list[str] = []
        self.requests: list[Request] = []
        self._once: deque[Behaviour] = deque()
        self._sticky = Behaviour("succeed")
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- what the test says -----------------------------------------------------
    def succeed(self, times: int | None = None) -> None:
        self._set(Behaviour("succeed"), times)

    def fail(self, status: int, payload: dict, times: int | None = None) -> None:
        self._set(Behaviour("fail", status, payload), times)

    def slow(self, delay: float, times: int | None = None) -> None:
        self._set(Behaviour("slow", delay=delay), times)

    def hang(self, times: int | None = None) -> None:
        """Accept the request and never answer (until the server stops)."""
        self._set(Behaviour("hang"), times)

    def _set(self, behaviour: Behaviour, times: int | None) -> None:
        with self._lock:
            if times is None:
                self._sticky = behaviour
            else:
                self._once.extend([behaviour] * times)

    def _next(self) -> Behaviour:
        with self._lock:
            return self._once.popleft() if self._once else self._sticky

    # -- what the subclass does -------------------------------------------------
    def check(self, request: Request) -> tuple[int, dict] | None:
        """Check the request as the real API would; an error answer, or None if it is fine."""
        return None

    def answer(self, request: Request) -> tuple[int, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    # -- serving ----------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # keep test output quiet
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, self.path, dict(self.headers), self.rfile.read(length))
                fake.requests.append(req)
                status, payload = fake._respond(req)
                if status == 0:
                    return   # hung up without an answer
                body = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass     # the client gave up waiting

            do_GET = do_POST = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         name=type(self).__name__, daemon=True).start()
        return self

    def _respond(self, req: Request) -> tuple[int, dict]:
        behaviour = self._next()
        if behaviour.kind == "hang":
            self._release.wait(HANG_LIMIT)
            return 0, {}
        if behaviour.kind == "slow":
            self._release.wait(behaviour.delay)
        refused = self.check(req)
        if refused is not None:
            return refused
        if behaviour.kind == "fail":
            return behaviour.status, behaviour.payload or {}
        return self.answer(req)

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

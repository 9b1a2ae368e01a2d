"""A local HTTP server standing in for a third party (a tenant's webhook endpoint, the
scheduler's internal API): it records what it was sent and answers what it is told."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class FakeEndpoint:
    """Answers each request with the next of ``statuses`` (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    body: Callable[[Received], bytes] = lambda _r: b"{}"
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(self.command, self.path, dict(self.headers),
                               self.rfile.read(length))
                endpoint.received.append(got)
                if endpoint.delay:
                    time.sleep(endpoint.delay)
                index = min(len(endpoint.received), len(endpoint.statuses)) - 1
                payload = endpoint.body(got)
                self.send_response(endpoint.statuses[index])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

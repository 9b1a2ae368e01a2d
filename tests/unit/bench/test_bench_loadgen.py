"""The load generator only ever targets this machine."""
from __future__ import annotations

import pytest

from bench import loadgen


def never_called(i: int) -> bytes:
    raise AssertionError("no request may be prepared for a refused host")


@pytest.mark.parametrize("host", ["192.0.2.10", "10.0.0.1", "2001:db8::1", "example.org",
                                  "localhost.example.org"])
def test_a_host_that_is_not_loopback_is_refused_before_anything_is_sent(host):
    with pytest.raises(ValueError, match="loopback"):
        loadgen.ramp(host, 80, never_called, [], log=lambda m: None)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_host_is_accepted(host):
    result = loadgen.ramp(host, 80, never_called, [], log=lambda m: None)

    assert result == {"max_rate_held_rps": 0.0, "accepted": 0, "next_index": 0, "steps": []}


@pytest.fixture
def local_server():
    """A keep-alive HTTP/1.1 server on 127.0.0.1 answering every POST with 201."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 64      # every connection the generator opens at once

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_every_request_gets_its_own_index_across_the_warm_up_and_the_steps(local_server):
    seen: list[int] = []

    def make(i: int) -> bytes:
        seen.append(i)
        return b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"

    result = loadgen.ramp("127.0.0.1", local_server, make, [40], seconds=0.25, warm_up=0.25,
                          log=lambda m: None)

    assert result["steps"][0]["ok"] == 10            # the warm-up is not recorded
    assert sorted(seen) == list(range(20))           # but its indices are not used again
    assert result["accepted"] == 20 and result["next_index"] == 20

    # a second ramp against the same server goes on from there: no message id twice
    again = loadgen.ramp("127.0.0.1", local_server, make, [40], seconds=0.25, warm_up=0.25,
                         log=lambda m: None, first=result["next_index"])
    assert sorted(seen) == list(range(40))
    assert again["next_index"] == 40

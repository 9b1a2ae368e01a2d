"""The image's HEALTHCHECK: ``python -m services.healthcheck``.

One image runs every role, so the check asks the container's main process (PID 1,
``hysbys serve notify``, ``hysbys worker inbound``, …) what it is: an API is probed on
its port, a worker, the dispatcher or the ticker on ``HYSBYS_METRICS_PORT``, each at
``/healthz``.  A one-off command (``hysbys db upgrade``) has nothing to probe.  Exit 0
healthy, 1 not (Docker's convention).
"""
from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from shared.config import Settings


def probe_port(argv: list[str], settings: Settings) -> int | None:
    """The port whose /healthz tells whether the process ``argv`` is healthy, if any."""
    words = [Path(a).name if "/" in a else a for a in argv]
    if "hysbys" in words:
        words = words[words.index("hysbys") + 1:]
    elif "services.cli" in words:
        words = words[words.index("services.cli") + 1:]
    if words[:1] == ["serve"] and len(words) > 1 and words[1] in settings.ports:
        return settings.ports[words[1]]
    if words[:1] in (["worker"], ["dispatcher"], ["ticker"], ["relay"]):
        return settings.metrics_port
    return None


def main() -> int:
    argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    port = probe_port([a for a in argv if a], Settings.from_env())
    if port is None:
        return 0
    url = f"http://127.0.0.1:{port}/healthz"      # a fixed scheme and host, never file:
    try:
        with urllib.request.urlopen(url, timeout=3):  # noqa: S310  # nosec B310
            return 0
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

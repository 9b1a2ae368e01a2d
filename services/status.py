"""``hysbys status``: the /ops figures in a terminal, once or ``--watch``-ing.

It reads ``GET /ops/data.json`` from the notify API with the admin token, so it
prints exactly what the /ops page shows (the same tables and problems), and it
works against every deployment: the embedded platform's queues live in memory
inside the process that runs it, where only that process's HTTP API can see
them; on the real stack it asks any notify API replica.

    hysbys status                       once, from http://127.0.0.1:$HYSBYS_NOTIFY_PORT
    hysbys status --watch [SECONDS]     refresh every SECONDS (5), until Ctrl-C
    hysbys status --url https://notify.example --json
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

import requests

from shared.config import Settings

CLEAR = "\x1b[H\x1b[2J"


class StatusError(Exception):
    """The figures could not be fetched; the message says why and what to try."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``hysbys status`` (the CLI adds them to its sub-parser)."""
    parser.add_argument("--url", help="the notify API (default http://127.0.0.1:<notify port>)")
    parser.add_argument("--watch", nargs="?", type=float, const=5.0, default=None,
                        metavar="SECONDS", help="refresh every SECONDS (default 5) until Ctrl-C")
    parser.add_argument("--json", action="store_true", help="print /ops/data.json as it is")
    parser.add_argument("--count", type=int, default=None, help=argparse.SUPPRESS)


def fetch(url: str, token: str, timeout: float = 10.0) -> dict:
    """The figures from ``{url}/ops/data.json``; raises :class:`StatusError`."""
    endpoint = url.rstrip("/") + "/ops/data.json"
    try:
        resp = requests.get(endpoint, headers={"Authorization": f"Bearer {token}",
                                               "Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        raise StatusError(f"cannot reach {endpoint} ({type(exc).__name__}); is notify running? "
                          "Point --url at it.") from exc
    if resp.status_code in (401, 403):
        raise StatusError(f"{endpoint} refused the admin token (HTTP {resp.status_code}); "
                          "check HYSBYS_ADMIN_TOKEN")
    if resp.status_code != 200:
        raise StatusError(f"{endpoint} answered HTTP {resp.status_code}")
    return resp.json()


def render(data: dict, source: str) -> str:
    """The figures as plain text: problems first, then each table of the page."""
    generated = dt.datetime.fromisoformat(data["generated_at"])
    lines = [f"Hysbys status — {source} — {generated:%Y-%m-%d %H:%M:%S} UTC "
             f"({data['broker']} broker)", ""]
    if data["alerts"]:
        lines.append("Problems")
        lines += [f"  {'!!' if a['level'] == 'critical' else '! '} {a['text']}"
                  for a in data["alerts"]]
    else:
        lines.append("No problems.")
    for table in data["tables"]:
        lines += ["", table["caption"], *_table_lines(table)]
    return "\n".join(lines)


def _table_lines(table: dict) -> list[str]:
    columns = table["columns"]
    rows = [[c["text"] for c in row] for row in table["rows"]]
    if not rows:
        return [f"  {table['empty']}"]
    header = [c["label"] for c in columns]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(columns))]

    def line(cells: list) -> str:
        return "  " + "  ".join(str(cell).rjust(w) if col["numeric"] else str(cell).ljust(w)
                                for cell, w, col in zip(cells, widths, columns, strict=True)
                                ).rstrip()

    return [line(header), "  " + "  ".join("-" * w for w in widths), *map(line, rows)]


def run(settings: Settings, args, out: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep) -> int:
    """``hysbys status``: 0 when printed, 2 when the figures could not be fetched."""
    out = out or sys.stdout
    url = args.url or f"http://127.0.0.1:{settings.ports['notify']}"
    if args.watch is None:
        try:
            data = fetch(url, settings.admin_token)
        except StatusError as exc:
            print(f"hysbys: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(data) if args.json else render(data, url), file=out, flush=True)
        return 0
    return _watch(settings, args, url, out, sleep)


def _watch(settings: Settings, args, url: str, out: TextIO, sleep) -> int:
    interval = max(0.5, args.watch)
    clear = CLEAR if out.isatty() and not args.json else ""
    shown = 0
    try:
        while args.count is None or shown < args.count:
            try:
                data = fetch(url, settings.admin_token)
                body = json.dumps(data) if args.json else render(data, url)
            except StatusError as exc:   # keep watching: the service may be restarting
                body = f"hysbys: {exc}"
            shown += 1
            footer = "" if args.json else (f"\nRefreshing every {interval:g} s "
                                           f"(update {shown}); Ctrl-C to stop.")
            print(f"{clear}{body}{footer}", file=out, flush=True)
            if not clear and not args.json:
                print("", file=out)
            if args.count is not None and shown >= args.count:
                break
            sleep(interval)
    except KeyboardInterrupt:
        print("", file=out)
    return 0

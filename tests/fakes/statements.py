"""Counting what a piece of code asks the database, statement by statement."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from sqlalchemy import event


@dataclass
class Trips:
    """Statements sent and transactions begun and ended on one engine (each a round
    trip on PostgreSQL, where psycopg2 sends BEGIN, COMMIT and ROLLBACK of its own)."""

    statements: list[str] = field(default_factory=list)
    begins: int = 0
    ends: int = 0

    @property
    def round_trips(self) -> int:
        return len(self.statements) + self.begins + self.ends


@contextlib.contextmanager
def counted(engine):
    trips = Trips()

    def statement(_conn, _cursor, text, _params, _context, _many):
        if not text.startswith("BEGIN"):          # SQLite's BEGIN IMMEDIATE: a begin
            trips.statements.append(" ".join(text.split())[:90])

    def begin(_conn):
        trips.begins += 1

    def end(_conn):
        trips.ends += 1

    listeners = [("before_cursor_execute", statement), ("begin", begin), ("commit", end),
                 ("rollback", end)]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield trips
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)

"""Streaming audience uploads: CSV or a JSON array, up to a million rows, in constant memory.

The request body is read as a stream, never whole: CSV line by line (each
line decoded on its own, so a file saved in Windows-1252 costs the rows that
hold a non-UTF-8 byte, not the file), JSON item by item (``ijson``).  Rows are
checked one at a time and written in batches, each batch its own transaction:
a bad row is reported with its line number and reason and the good rows are
kept; a failure half-way keeps every batch before it; uploading the file again
updates the same people instead of adding them twice.
"""
from __future__ import annotations

import codecs
import csv
import uuid
from collections.abc import Callable, Iterator
from typing import IO

import ijson

from services.scheduler.subscribers import RowProblem, UploadOutcome, clean
from shared.errors import ApiError, ValidationError

MAX_LINE = 128 * 1024          # a subscriber row is a few hundred bytes; csv's own field limit
READ_CHUNK = 64 * 1024
BATCH = 1000
CONTACT_COLUMNS = ("phone", "email")
KNOWN_COLUMNS = ("phone", "email", "language")

Flush = Callable[[list[tuple[int, dict]]], None]


class LineReader:
    """Physical lines of a byte stream, each decoded on its own, for ``csv.reader``.

    A line that is not UTF-8 or longer than ``MAX_LINE`` bytes becomes a
    placeholder and its line number is kept in :attr:`problems`, so the row it
    belongs to is reported instead of crashing (or buffering 10 MB).
    """

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.number = 0
        self.problems: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        for raw in self._raw_lines():
            self.number += 1
            if raw is None:
                self.problems[self.number] = f"the line is longer than {MAX_LINE} bytes"
                yield "\n"
                continue
            if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]      # Excel's "CSV UTF-8" starts with one
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.problems[self.number] = (
                    f"not UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start + 1}): "
                    "save the file as CSV UTF-8")
                yield raw.decode("utf-8", errors="replace")

    def _raw_lines(self) -> Iterator[bytes | None]:
        buffer, skipping = b"", False
        while True:
            block = self.stream.read(READ_CHUNK)
            if not block:
                break
            buffer += block
            start = 0
            while True:
                end = buffer.find(b"\n", start)
                if end < 0:
                    break
                line, start = buffer[start:end + 1], end + 1
                if skipping:
                    skipping = False           # the end of an over-long line
                elif len(line) > MAX_LINE:
                    yield None
                else:
                    yield line
            buffer = buffer[start:]
            if len(buffer) > MAX_LINE:
                if not skipping:
                    yield None
                skipping, buffer = True, b""
        if buffer and not skipping:
            yield buffer

    def take_problem(self, first: int, last: int) -> str | None:
        found = None
        for number in range(first, last + 1):
            found = self.problems.pop(number, None) or found
        return found


def header(names: list[str]) -> list[str]:
    """The columns, checked: a 400 naming what is missing or repeated."""
    columns = [n.strip().lower() for n in names]
    for index, name in enumerate(columns):
        if not name:
            raise ValidationError(f"columns: column {index + 1} of the header has no name")
    repeated = sorted({n for n in columns if columns.count(n) > 1})
    if repeated:
        raise ValidationError(f"columns: {', '.join(repeated)} appear more than once")
    if not any(c in columns for c in CONTACT_COLUMNS):
        raise ValidationError("columns: missing phone or email (the header has "
                              f"{', '.join(columns) or 'no columns'})")
    return columns


def csv_row(columns: list[str], values: list[str]) -> dict:
    """A CSV record as a subscriber row: empty cells are left out (they change nothing)."""
    if len(values) > len(columns):
        raise RowProblem(f"has {len(values)} fields but the header has {len(columns)}")
    row: dict = {"attributes": {}}
    for name, value in zip(columns, values, strict=False):
        value = value.strip()
        if not value:
            continue
        if name in KNOWN_COLUMNS:
            row[name] = value.lower() if name == "language" else value
        else:
            row["attributes"][name] = value
    if not row["attributes"]:
        del row["attributes"]
    return row


def read_csv(stream: IO[bytes], flush: Flush, outcome: UploadOutcome, batch_size: int = BATCH
             ) -> None:
    """Parse, check and hand on a CSV upload in batches of ``batch_size`` rows."""
    lines = LineReader(stream)
    reader = csv.reader(iter(lines))
    columns: list[str] | None = None
    batch: list[tuple[int, dict]] = []
    previous = 0
    while True:
        try:
            values = next(reader)
            problem = None
        except StopIteration:
            break
        except csv.Error as exc:
            values, problem = None, f"is not valid CSV: {exc}"
        first, previous = previous + 1, reader.line_num
        problem = lines.take_problem(first, previous) or problem
        if columns is None:
            if problem or values is None:
                raise ValidationError(f"columns: the header line {problem or 'is not readable'}")
            columns = header(values)
            continue
        if problem is None and not any(v.strip() for v in values):
            continue                                   # a blank line
        outcome.rows += 1
        try:
            if problem:
                raise RowProblem(problem)
            batch.append((first, clean(csv_row(columns, values))))
        except RowProblem as exc:
            outcome.error(first, str(exc))
        if len(batch) >= batch_size:
            flush(batch)
            batch = []
    if columns is None:
        raise ValidationError("columns: the file is empty (it needs a header line)")
    if batch:
        flush(batch)


class _Prefixed:
    """A stream with its first bytes (already read to look at) put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""                 # ijson probes with read(0) for bytes or text
        if self.head:
            cut = len(self.head) if size < 0 else size
            out, self.head = self.head[:cut], self.head[cut:]
            return out
        return self.rest.read(size)


def read_json(stream: IO[bytes], flush: Flush, outcome: UploadOutcome) -> None:
    """The same for a JSON array of subscriber objects, read item by item."""
    head = stream.read(READ_CHUNK)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    if not head.lstrip(b" \t\r\n").startswith(b"["):
        raise ValidationError("Request body must be a JSON array of subscriber objects "
                              "(or a CSV file with Content-Type text/csv)")
    stream = _Prefixed(head, stream)
    batch: list[tuple[int, dict]] = []
    index = -1
    try:
        for index, item in enumerate(ijson.items(stream, "item", use_float=True)):
            outcome.rows += 1
            try:
                batch.append((index, clean(item)))
            except RowProblem as exc:
                outcome.error(index, str(exc))
            if len(batch) >= BATCH:
                flush(batch)
                batch = []
    except ijson.JSONError as exc:
        if index < 0 and not batch:
            raise ApiError(f"Invalid JSON supplied in POST data: {exc}", 400,
                           "BadRequestError") from None
        outcome.error(index + 1, f"invalid JSON after this point, the rest of the upload was "
                      f"not read: {exc}")
        outcome.complete = False
    if batch:
        flush(batch)


def new_upload_id() -> str:
    return str(uuid.uuid4())

"""Bulk sends: a CSV file or a JSON list of up to 100,000 recipients, one template.

The body is read as a stream (``csv`` row by row, JSON with ``ijson``), never
held whole; rows are validated, built and stored in batches, each batch one
transaction that also moves the :class:`BulkJob`'s counters on, so
``GET /api/bulk/{id}`` shows progress while the upload is still running.
Good rows become notifications (``sending.build``/``store``, as the API sends
them); bad rows are reported with their row number and reason.
"""
from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import ijson
from sqlalchemy.orm import Session

from services.notify import limits, sending
from services.notify.models import BulkJob
from services.notify.templates import placeholder_key
from shared.db import Database, utcnow
from shared.errors import ValidationError
from shared.http import iso
from shared.tenancy import Caller, Tenant

MAX_ROWS = 100_000
MAX_BODY_BYTES = 50 * 1024 * 1024
BATCH = 1000
MAX_STORED_ERRORS = 1000
RECIPIENT_COLUMNS = {"phonenumber": ("sms", "phone_number"),
                     "emailaddress": ("email", "email_address")}
RESERVED = {"reference", "language"}


@dataclass
class Row:
    number: int                  # 1 = the first row after the header (or rows[0])
    recipient: str | None = None
    recipient_field: str | None = None   # JSON rows: which of phone_number/email_address
    personalisation: dict = field(default_factory=dict)
    reference: str | None = None
    language: str | None = None
    error: str | None = None     # set when the row is malformed before validation


class FileError(ValidationError):
    """The file as a whole cannot be read (not UTF-8, broken CSV or JSON)."""


# -- reading ------------------------------------------------------------------------

def buffered(stream):
    """A buffered reader over the request stream (werkzeug's LimitedStream takes a
    zero-byte read, which ijson makes first, for a client disconnect)."""
    if isinstance(stream, io.RawIOBase):
        return io.BufferedReader(stream, 64 * 1024)
    return stream


def csv_source(stream) -> tuple[str, Iterator[Row]]:
    """(channel, rows) from a CSV stream whose header names the recipient column."""
    text = io.TextIOWrapper(buffered(stream), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = [h.strip() for h in next(reader, [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FileError(f"The file is not UTF-8 CSV: {exc}") from exc
    found = [(i, RECIPIENT_COLUMNS[placeholder_key(h)]) for i, h in enumerate(header)
             if placeholder_key(h) in RECIPIENT_COLUMNS]
    if len(found) != 1:
        raise ValidationError("The first row must be a header with one column called "
                              "phone_number or email_address")
    col, (channel, _) = found[0]
    return channel, _csv_rows(reader, header, col)


def _csv_rows(reader, header: list[str], col: int) -> Iterator[Row]:
    number = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except (UnicodeDecodeError, csv.Error) as exc:
            raise FileError(f"Row {number + 1}: the file is not UTF-8 CSV ({exc})") from exc
        number += 1
        if not any(v.strip() for v in values):
            continue   # blank lines at the end of a spreadsheet export
        row = Row(number=number, recipient=values[col] if col < len(values) else "")
        if len(values) > len(header):
            row.error = f"has {len(values)} cells but the header has {len(header)}"
        for name, value in zip(header, values, strict=False):
            key = name.lower()
            if name == header[col]:
                continue
            if key in RESERVED:
                setattr(row, key, value.strip() or None)
            if name:
                row.personalisation[name] = value
        yield row


def json_source(stream, template_id: str | None) -> tuple[str | None, Iterator[Row]]:
    """(template_id, rows) from ``{"template_id": ..., "rows": [{...}, ...]}``.

    ``template_id`` must come before ``rows`` (or be given as a query parameter):
    the rows are sent as they are read.
    """
    events = _events(buffered(stream))
    prefix, event, _ = next(events, ("", None, None))
    if event != "start_map":
        raise ValidationError("The JSON body must be an object with template_id and rows")
    for prefix, event, value in events:
        if event == "map_key" and prefix == "" and value not in ("template_id", "rows"):
            raise ValidationError(f"Additional properties are not allowed ({value} was unexpected)")
        if prefix == "template_id" and event == "string":
            template_id = value
        elif prefix == "rows":
            if event != "start_array":
                raise ValidationError("rows must be a list")
            if template_id is None:
                raise ValidationError("template_id is a required property (put it before rows, "
                                      "or in the query string)")
            return template_id, _json_rows(events)
    raise ValidationError("rows is a required property")


def _events(stream) -> Iterator[tuple]:
    try:
        yield from ijson.parse(stream, use_float=True)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise FileError(f"Invalid JSON supplied in POST data ({exc})") from exc


def _json_rows(events: Iterator[tuple]) -> Iterator[Row]:
    number = 0
    for prefix, event, value in events:
        if prefix == "rows" and event == "end_array":
            break
        number += 1
        if event in ("start_map", "start_array"):
            builder = ijson.ObjectBuilder()
            builder.event(event, value)
            depth = 1
            for _, ev, val in events:
                builder.event(ev, val)
                depth += 1 if ev in ("start_map", "start_array") else \
                    -1 if ev in ("end_map", "end_array") else 0
                if depth == 0:
                    break
            yield _json_row(number, builder.value)
        else:
            yield Row(number=number, error="must be an object")
    for _prefix, event, value in events:
        if event == "map_key":
            raise ValidationError(f"Additional properties are not allowed ({value} was unexpected)")


def _json_row(number: int, item) -> Row:
    from marshmallow import ValidationError as MarshmallowError

    from services.notify.schemas import BulkRow

    if not isinstance(item, dict):
        return Row(number=number, error="must be an object")
    try:
        data = BulkRow().load(item)
    except MarshmallowError as exc:
        from shared.errors import flatten_messages

        return Row(number=number, error="; ".join(flatten_messages(exc.messages)))
    given = [f for f in ("phone_number", "email_address") if f in data]
    if len(given) != 1:
        return Row(number=number, error="needs phone_number or email_address (one of them)")
    return Row(number=number, recipient=data[given[0]], recipient_field=given[0],
               personalisation=data.get("personalisation") or {},
               reference=data.get("reference"), language=data.get("language"))


# -- processing ---------------------------------------------------------------------

@dataclass
class Upload:
    """One bulk send under way: who sends, which template, and where progress goes."""

    db: Database
    caller: Caller
    template_id: str
    channel: str
    correlation_id: str | None = None
    on_batch: Callable[[], None] = lambda: None
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    batch: int = BATCH
    max_rows: int = MAX_ROWS
    max_errors: int = MAX_STORED_ERRORS

    def start(self) -> None:
        """Check the template and record the job (committed: visible at once)."""
        with self.db.transaction() as session:
            tenant = session.get(Tenant, self.caller.tenant_id)
            sending.find_template(session, tenant, self.template_id, self.channel)
            session.add(BulkJob(id=self.job_id, tenant_id=tenant.id, template_id=self.template_id,
                                channel=self.channel, status="processing", total_rows=0,
                                accepted=0, rejected=0, errors=[], created_at=utcnow()))

    def run(self, rows: Iterator[Row]) -> None:
        """Send every good row, batch by batch.  A file that cannot be read to the end
        (or a template archived mid-way) ends the job ``failed``: the rows before
        the fault stay sent, and the error is raised for the caller's 400."""
        try:
            for batch in _chunks(rows, self.batch, self.max_rows):
                self._batch(batch)
        except TooManyRows as exc:
            self._finish("completed", [(self.max_rows + 1, exc.message)])
            return
        except ValidationError as exc:
            self._finish("failed", [(None, exc.message)])
            raise
        except Exception:
            # never leave a job "processing" for ever: the caller's 500 is logged
            self._finish("failed", [(None, "Internal server error")])
            raise
        self._finish("completed", [])

    def _batch(self, rows: list[Row]) -> None:
        if not rows:
            return
        now = utcnow()
        with self.db.transaction() as session:
            tenant = session.get(Tenant, self.caller.tenant_id)
            template = sending.find_template(session, tenant, self.template_id, self.channel)
            built, errors = [], []
            for row in rows:
                try:
                    built.append((row.number, sending.build(tenant, template, self._request(row),
                                                            now)))
                except ValidationError as exc:
                    errors.append((row.number, exc.message))
            built, refused = self._within_daily_limit(session, tenant, built, now)
            errors = sorted(errors + refused)
            notifications = [n for _, n in built]
            sending.store(session, tenant, notifications, sending.suppressed_among(
                session, tenant.id, self.channel, {n.recipient for n in notifications}),
                self.correlation_id, now)
            self._count(session, len(rows), len(notifications), errors)
        self.on_batch()

    def _request(self, row: Row) -> sending.SendRequest:
        if row.error:
            raise ValidationError(row.error)
        expected = "phone_number" if self.channel == "sms" else "email_address"
        if row.recipient_field not in (None, expected):
            raise ValidationError(f"{expected} is a required property for a {self.channel} "
                                  "template")
        return sending.SendRequest(
            channel=self.channel, template_id=self.template_id, recipient=row.recipient or "",
            personalisation=row.personalisation, reference=row.reference,
            language=row.language if row.language in ("cy", "en") else None,
            key_id=self.caller.key_id, key_type=self.caller.key_type, bulk_id=self.job_id)

    def _within_daily_limit(self, session: Session, tenant: Tenant, built: list, now):
        if self.caller.key_type == "test" or not built:
            return built, []
        per_day = tenant.setting("daily_message_limit")
        room = limits.remaining_today(session, tenant_id=tenant.id, per_day=per_day, now=now)
        kept, over = built[:room], built[room:]
        limits.take_daily(session, tenant_id=tenant.id, key_type=self.caller.key_type,
                          per_day=per_day, count=len(kept), now=now)
        limit = per_day or limits.DEFAULT_PER_DAY
        return kept, [(number, f"Exceeded send limits ({limit}) for today") for number, _ in over]

    def _count(self, session: Session, total: int, accepted: int, errors: list) -> None:
        job = session.get(BulkJob, self.job_id, with_for_update=True)
        job.total_rows += total
        job.accepted += accepted
        job.rejected += len(errors)
        room = self.max_errors - len(job.errors)
        if room > 0 and errors:
            job.errors = job.errors + [{"row": r, "error": e} for r, e in errors[:room]]

    def _finish(self, status: str, errors: list) -> None:
        with self.db.transaction() as session:
            job = session.get(BulkJob, self.job_id, with_for_update=True)
            job.rejected += sum(1 for r, _ in errors if r is not None)
            job.total_rows += sum(1 for r, _ in errors if r is not None)
            job.errors = job.errors + [{"row": r, "error": e} for r, e in errors]
            job.status = status
            job.completed_at = utcnow()


class TooManyRows(ValidationError):
    pass


def _chunks(rows: Iterator[Row], size: int, max_rows: int) -> Iterator[list[Row]]:
    """Rows in batches; the rows read before a reading error are still handed over."""
    batch: list[Row] = []
    try:
        for row in rows:
            if row.number > max_rows:
                yield batch
                batch = []
                raise TooManyRows(f"A bulk send has at most {max_rows} rows: this row and any "
                                  "after it were not read")
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
    except ValidationError:
        if batch:
            yield batch
        raise
    yield batch


def job_json(job: BulkJob) -> dict:
    """A bulk job as ``GET /api/bulk/{id}`` shows it."""
    return {"id": job.id, "template_id": job.template_id, "channel": job.channel,
            "status": job.status, "total": job.total_rows, "accepted": job.accepted,
            "rejected": job.rejected, "errors": job.errors,
            "errors_truncated": job.rejected > len([e for e in job.errors if e.get("row")]),
            "created_at": iso(job.created_at), "completed_at": iso(job.completed_at)}

"""Structured JSON logs with tenant, notification and correlation ids.

Phone numbers and email addresses are masked in every log line, whatever code
wrote it: the mask is applied in the formatter, not left to each caller.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None)
tenant_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant_id", default=None)
# other ids bound for a block of work (:func:`bound`): notification_id, event_id ...
_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_fields", default=None)
FIELDS = ("notification_id", "event_id", "event_type", "queue", "service")

# A phone number starts with + or 0 (E.164, 0044…, 07…); dates and ids do not.
_PHONE = re.compile(r"(?<![\w:.-])((?:\+|0)\d[\d ()-]{7,}\d)(?![\w-])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask(text: str) -> str:
    """Mask phone numbers (keep the last 3 digits) and email local parts."""
    def _phone(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group(1))
        if len(digits) < 9 or len(digits) > 15:
            return m.group(1)
        return "•" * (len(digits) - 3) + digits[-3:]

    text = _EMAIL.sub(lambda m: f"{m.group(1)}•••@{m.group(2)}", text)
    return _PHONE.sub(_phone, text)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Every log line written inside the block (in this thread or context) carries ``fields``.

    ``correlation_id`` and ``tenant_id`` set their context variables; any other field
    (``notification_id`` ...) is added beside them.  ``None`` clears a field for the
    block: a line about one notification never shows another's id.  A field passed to the
    log call itself (``extra=``) wins.  On leaving, what was bound before comes back::

        with logs.bound(correlation_id=n.correlation_id, notification_id=n.id):
            provider.send(message)
    """
    tokens: list[tuple[contextvars.ContextVar, contextvars.Token]] = []
    if "correlation_id" in fields:
        value = fields.pop("correlation_id")
        tokens.append((correlation_id, correlation_id.set(None if value is None else str(value))))
    if "tenant_id" in fields:
        value = fields.pop("tenant_id")
        tokens.append((tenant_id, tenant_id.set(None if value is None else str(value))))
    if fields:
        merged = dict(_fields.get() or {})
        for key, value in fields.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = str(value)
        tokens.append((_fields, _fields.set(merged)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        cid = getattr(record, "correlation_id", None) or correlation_id.get()
        if cid:
            out["correlation_id"] = cid
        tid = getattr(record, "tenant_id", None) or tenant_id.get()
        if tid:
            out["tenant_id"] = str(tid)
        context = _fields.get() or {}
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is None:
                value = context.get(key)
            if value is not None:
                out[key] = str(value)
        for key, value in context.items():
            out.setdefault(key, value)
        if record.exc_info:
            out["error"] = mask(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure(level: str = "INFO", json_lines: bool = True, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else MaskingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_hysbys", False):
            root.removeHandler(h)
    handler._hysbys = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("werkzeug", "amqp", "kombu", "urllib3", "twilio.http_client", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # kombu warns that memory:// has no hostname on every connection: true and harmless
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)

"""Where a service team's subscribers come in: ``/api/subscribers`` (JSON) and
``/api/subscribers/upload`` (a streamed CSV or JSON file of up to a million rows) —
and go: ``DELETE /api/subscribers/<id>`` erases one (a citizen's right to erasure)."""
from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from flask import request
from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError

from services.scheduler import schemas, subscribers, uploads
from services.scheduler.models import Subscriber
from services.scheduler.paging import links, page
from shared import pii
from shared.db import utcnow
from shared.errors import ApiError, Conflict, NotFound, ValidationError
from shared.http import authenticated, iso
from shared.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ROWS = 10_000
# Only the upload endpoint takes big bodies; every other keeps the app's 2 MiB.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def subscriber_json(s: Subscriber) -> dict:
    return {"id": s.id, "phone": s.phone, "email": s.email, "language": s.language,
            "attributes": s.attributes or {}, "opted_out": s.opted_out,
            "created_at": iso(s.created_at), "updated_at": iso(s.updated_at)}


def blueprint(runtime: Runtime) -> Blueprint:
    """The subscriber routes."""
    blp = Blueprint("audience", __name__, url_prefix="/api",
                    description="Subscribers: one by one, in lists, or uploaded as a file")

    @blp.route("/subscribers", methods=["POST"])
    @blp.response(201, schemas.UpsertResult)
    @blp.doc(security=[{"bearer": []}])
    def upsert_subscribers():
        """Add or update subscribers: one JSON object, or a list of up to 10,000.

        A phone or email already known updates that subscriber.  In a list, bad
        rows are reported by index and the good rows are kept.
        """
        caller = authenticated(runtime)
        payload = _json_payload()
        rows = payload if isinstance(payload, list) else [payload]
        if len(rows) > MAX_ROWS:
            raise ValidationError(f"subscribers: send at most {MAX_ROWS} rows a request, or "
                                  "use POST /api/subscribers/upload")
        try:
            with runtime.db.transaction() as session:
                outcome = subscribers.upsert(session, caller.tenant_id, rows)
                if not isinstance(payload, list) and outcome.errors:
                    # one object, one answer: a bad subscriber is a 400 naming the field
                    raise ValidationError(outcome.errors[0]["reason"])
        except IntegrityError:
            raise Conflict("Another request added one of these subscribers at the same "
                           "time: send the rows again") from None
        return outcome.as_dict()

    @blp.route("/subscribers/upload", methods=["POST"])
    @blp.alt_response(201, schema=schemas.UploadResult, success=True)
    @blp.doc(security=[{"bearer": []}])
    def upload_subscribers():
        """Upload a file of subscribers: CSV (``text/csv``, a header with ``phone`` and/or
        ``email``, optional ``language``; every other column is an attribute) or a JSON
        array.  Streamed and written in batches; each bad row is reported with its line
        number (CSV) or index (JSON) and the good rows are kept."""
        caller = authenticated(runtime)
        request.max_content_length = MAX_UPLOAD_BYTES
        if (request.content_length or 0) > MAX_UPLOAD_BYTES:
            raise ApiError(f"Request body too large: the limit is {MAX_UPLOAD_BYTES} bytes",
                           413, "RequestTooLargeError")
        mimetype = request.mimetype
        if mimetype not in ("text/csv", "application/json"):
            raise ApiError("Content-Type must be text/csv or application/json", 415,
                           "UnsupportedMediaTypeError")
        outcome = subscribers.UploadOutcome(key="row" if mimetype == "text/csv" else "index")
        upload_id = uploads.new_upload_id()

        def flush(batch: list[tuple[int, dict]]) -> None:
            _write_batch(runtime, caller.tenant_id, batch, upload_id, outcome)

        reader = uploads.read_csv if mimetype == "text/csv" else uploads.read_json
        reader(request.stream, flush, outcome)
        return outcome.as_dict(), 201

    @blp.route("/subscribers", methods=["GET"])
    @blp.arguments(schemas.SubscriberFilters, location="query")
    @blp.response(200, schemas.SubscriberList)
    @blp.doc(security=[{"bearer": []}])
    def list_subscribers(args):
        """Subscribers newest first; ``links.next`` carries ``older_than``"""
        caller = authenticated(runtime)
        q = sa.select(Subscriber).where(Subscriber.tenant_id == caller.tenant_id)
        with runtime.db.read() as session:
            if args.get("phone"):
                q = q.where(Subscriber.phone_hash == pii.lookup_hash(session, args["phone"]))
            if args.get("email"):
                q = q.where(Subscriber.email_hash == pii.lookup_hash(session, args["email"]))
            rows = page(session, q, Subscriber, args, args["page_size"])
        return {"subscribers": [subscriber_json(s) for s in rows],
                "links": links(".list_subscribers", rows, args["page_size"])}

    @blp.route("/subscribers/<subscriber_id>", methods=["GET"])
    @blp.response(200, schemas.SubscriberOut)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(security=[{"bearer": []}])
    def get_subscriber(subscriber_id: str):
        """One subscriber (another tenant's id is a 404, like an unknown one)"""
        caller = authenticated(runtime)
        with runtime.db.read() as session:
            return subscriber_json(_find(session, caller.tenant_id, subscriber_id))

    @blp.route("/subscribers/<subscriber_id>", methods=["PATCH"])
    @blp.arguments(schemas.SubscriberPatch)
    @blp.response(200, schemas.SubscriberOut)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(security=[{"bearer": []}])
    def patch_subscriber(args, subscriber_id: str):
        """Change a subscriber's language or attributes (attributes are replaced whole)"""
        caller = authenticated(runtime)
        with runtime.db.transaction() as session:
            sub = _find(session, caller.tenant_id, subscriber_id)
            if "language" in args:
                sub.language = args["language"]
            if "attributes" in args:
                sub.attributes = args["attributes"]
            sub.updated_at = utcnow()
            return subscriber_json(sub)

    @blp.route("/subscribers/<subscriber_id>", methods=["DELETE"])
    @blp.response(204)
    @blp.alt_response(400, "BAD_REQUEST")
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(security=[{"bearer": []}])
    def erase_subscriber(subscriber_id: str):
        """Erase a subscriber (a citizen's right to erasure): their row goes, with their
        phone, email, language and attributes, and no reminder reaches them afterwards —
        not even one already planned.  An opt-out held in notify's suppression list is
        kept (it is the citizen's standing choice), and notifications already sent age
        out with notify's retention.  Another tenant's id is a 404, like an unknown one."""
        caller = authenticated(runtime)
        sid = _subscriber_id(subscriber_id)
        with runtime.db.transaction() as session:
            erased = session.execute(sa.delete(Subscriber).where(
                Subscriber.id == sid, Subscriber.tenant_id == caller.tenant_id)).rowcount
        if not erased:
            raise NotFound()
        # the service team's record of the request: ids only, never the number itself
        log.info("subscriber %s erased", sid)
        return ""

    return blp


def _find(session, tenant_id: str, subscriber_id: str) -> Subscriber:
    sub = session.scalars(sa.select(Subscriber).where(
        Subscriber.id == _subscriber_id(subscriber_id),
        Subscriber.tenant_id == tenant_id)).first()
    if sub is None:
        raise NotFound()
    return sub


def _subscriber_id(value: str) -> str:
    """The path's id as a canonical UUID (how ids are stored), or a 400 naming it."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError("subscriber_id is not a valid UUID") from None


def _write_batch(runtime: Runtime, tenant_id: str, batch: list[tuple[int, dict]],
                 upload_id: str, outcome: subscribers.UploadOutcome) -> None:
    """One transaction per batch; a race with another upload is retried once."""
    for attempt in (1, 2):
        tally = subscribers.UploadOutcome(key=outcome.key)
        try:
            with runtime.db.transaction() as session:
                subscribers.upsert_batch(session, tenant_id, batch, upload_id, tally)
        except IntegrityError:
            if attempt == 2:
                for row, _data in batch:
                    outcome.error(row, "another upload changed this subscriber at the same "
                                       "time: upload the file again")
                return
            log.info("upload batch raced another writer; retrying")
            continue
        outcome.created += tally.created
        outcome.updated += tally.updated
        outcome.opted_out += tally.opted_out
        for error in tally.errors:
            outcome.error(error[outcome.key], error["reason"])
        return


def _json_payload():
    """The request's JSON: an object or a list (a bulk upload)."""
    if not request.is_json:
        raise ApiError("Content-Type must be application/json", 415, "UnsupportedMediaTypeError")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("Invalid JSON supplied in POST data", 400, "BadRequestError")
    if not isinstance(body, (dict, list)):
        raise ValidationError("Request body must be a subscriber object or a list of them")
    return body

"""Audience uploads: CSV and JSON files streamed row by row, bad rows reported with their
line, good rows kept, a second upload updating rather than duplicating."""
from __future__ import annotations

import io
import json
import tracemalloc

import sqlalchemy as sa

from services.scheduler import subscribers, uploads
from services.scheduler.models import Subscriber
from shared import events

CSV = "text/csv"


def post(client, tenant, body: bytes | str, content_type: str = CSV):
    data = body.encode() if isinstance(body, str) else body
    return client.post("/api/subscribers/upload", headers=tenant.headers(), data=data,
                       content_type=content_type)


def stored(scheduler, tenant_id: str) -> dict[str, Subscriber]:
    with scheduler.runtime.db.read() as session:
        return {s.phone or s.email: s for s in session.scalars(
            sa.select(Subscriber).where(Subscriber.tenant_id == tenant_id))}


def test_a_csv_upload_stores_each_row_with_the_other_columns_as_attributes(
        scheduler, client, new_tenant):
    t = new_tenant("penfro")
    resp = post(client, t, "\ufeffPhone,Language,Round,UPRN,Address\n"
                           "07700 900001,cy,A,1001,\"1 Stryd Fawr, Penfro\"\n"
                           "07700900002,EN,B,,\n")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json() == {"complete": True, "rows": 2, "created": 2, "updated": 0,
                               "opted_out": 0, "errors_total": 0, "errors_truncated": False,
                               "errors": []}
    rows = stored(scheduler, t.id)
    assert rows["+447700900001"].attributes == {"round": "A", "uprn": "1001",
                                                "address": "1 Stryd Fawr, Penfro"}
    assert rows["+447700900002"].language == "en"
    assert rows["+447700900002"].attributes == {"round": "B"}


def test_bad_rows_are_reported_by_line_and_the_good_rows_kept(scheduler, client, new_tenant):
    t = new_tenant("penfro")
    body = ("phone,email,language,round\n"
            "07700900001,,,A\n"
            "banana,,,A\n"                      # line 3
            ",,,A\n"                            # line 4
            "07700900002,,welsh,A\n"            # line 5
            "07700900003,not-an-email,,A\n"     # line 6
            "07700900004,,,A,extra\n"           # line 7
            "\n"
            "07700900005,,,A\n")
    result = post(client, t, body).get_json()
    assert (result["rows"], result["created"], result["errors_total"]) == (7, 2, 5)
    reasons = {e["row"]: e["reason"] for e in result["errors"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert reasons[3].startswith("phone Not a valid phone number")
    assert "phone or email is required" in reasons[4]
    assert reasons[5].startswith("language")
    assert reasons[6].startswith("email")
    assert reasons[7] == "has 5 fields but the header has 4"
    assert sorted(stored(scheduler, t.id)) == ["+447700900001", "+447700900005"]


def test_a_line_that_is_not_utf8_is_a_row_error_and_the_rest_of_the_file_is_read(
        scheduler, client, new_tenant):
    t = new_tenant("penfro")
    body = (b"phone,name\n07700900001,Sian\n" + "07700900002,Siân\n".encode("cp1252")
            + "07700900003,Siân\n".encode())
    result = post(client, t, body).get_json()
    assert result["errors"] == [{"row": 3, "reason": "not UTF-8 (byte 0xe2 at position 15): "
                                                     "save the file as CSV UTF-8"}]
    rows = stored(scheduler, t.id)
    assert sorted(rows) == ["+447700900001", "+447700900003"]
    assert rows["+447700900003"].attributes == {"name": "Siân"}


def test_a_ten_megabyte_line_is_a_row_error_not_a_crash(scheduler, client, new_tenant):
    t = new_tenant("penfro")
    body = b"phone,note\n07700900001,ok\n07700900002," + b"x" * (10 * 1024 * 1024) + \
        b"\n07700900003,ok\n"
    resp = post(client, t, body)
    assert resp.status_code == 201
    assert resp.get_json()["errors"] == [
        {"row": 3, "reason": f"the line is longer than {uploads.MAX_LINE} bytes"}]
    assert sorted(stored(scheduler, t.id)) == ["+447700900001", "+447700900003"]


def test_missing_or_repeated_columns_are_a_400_that_names_them(client, new_tenant,
                                                               error_messages):
    t = new_tenant("penfro")
    for body, message in (
            ("name,round\nSian,A\n", "columns: missing phone or email (the header has name, "
                                     "round)"),
            ("phone,round,Round\n07700900001,A,B\n", "columns: round appear more than once"),
            ("phone,,round\n07700900001,x,A\n", "columns: column 2 of the header has no name"),
            ("", "columns: the file is empty (it needs a header line)")):
        resp = post(client, t, body)
        assert (resp.status_code, error_messages(resp)) == (400, [message])


def test_the_same_person_twice_in_one_file_is_a_duplicate_row_even_batches_apart(
        scheduler, new_tenant):
    t = new_tenant("penfro")
    body = (b"phone,round\n07700900001,A\n07700900002,A\n07700900003,A\n"
            b"+447700900001,B\n")
    outcome = subscribers.UploadOutcome()
    upload_id = uploads.new_upload_id()

    def flush(batch):
        with scheduler.runtime.db.transaction() as session:
            subscribers.upsert_batch(session, t.id, batch, upload_id, outcome)

    uploads.read_csv(io.BytesIO(body), flush, outcome, batch_size=2)
    assert (outcome.created, outcome.errors) == (3, [
        {"row": 5, "reason": "duplicate: an earlier row of this upload has the same phone"}])
    assert stored(scheduler, t.id)["+447700900001"].attributes == {"round": "A"}


def test_uploading_again_updates_the_same_people_and_keeps_opt_outs(
        scheduler, client, new_tenant, deliver):
    t = new_tenant("penfro")
    post(client, t, "phone,round,uprn\n07700900001,A,1001\n07700900002,A,1002\n")
    deliver(events.make("subscriber.opted_out", t.id, recipient="+447700900002"))
    result = post(client, t, "phone,round\n07700900001,B\n07700900002,B\n").get_json()
    assert (result["created"], result["updated"], result["opted_out"]) == (0, 2, 1)
    rows = stored(scheduler, t.id)
    assert len(rows) == 2
    assert rows["+447700900001"].attributes == {"round": "B", "uprn": "1001"}
    assert rows["+447700900002"].opted_out is True


def test_a_json_array_is_streamed_with_bad_items_reported_by_index(scheduler, client,
                                                                   new_tenant):
    t = new_tenant("penfro")
    items = [{"phone": "07700900001", "attributes": {"round": "A", "bins": 2}},
             {"phone": "nope"}, "not an object", {"email": "Sian@Example.com"}]
    result = post(client, t, json.dumps(items), "application/json").get_json()
    assert (result["created"], [e["index"] for e in result["errors"]]) == (2, [1, 2])
    assert stored(scheduler, t.id)["+447700900001"].attributes == {"round": "A", "bins": 2.0}


def test_a_json_upload_cut_short_keeps_what_came_before_and_says_where_it_stopped(
        scheduler, client, new_tenant, error_messages):
    t = new_tenant("penfro")
    result = post(client, t, '[{"phone": "07700900001"}, {"phone": "0770', "application/json")
    body = result.get_json()
    assert body["complete"] is False and body["created"] == 1
    assert "the rest of the upload was not read" in body["errors"][0]["reason"]
    not_array = post(client, t, '{"phone": "07700900001"}', "application/json")
    assert not_array.status_code == 400 and "JSON array" in error_messages(not_array)[0]


def test_only_the_upload_endpoint_takes_a_body_over_two_megabytes(client, new_tenant):
    t = new_tenant("penfro")
    rows = "".join(f"0770090{n:04d},{'x' * 200}\n" for n in range(11_000))
    big = "phone,note\n" + rows
    assert len(big) > 2 * 1024 * 1024
    assert post(client, t, big).status_code == 201
    too_big = client.post("/api/subscribers", headers=t.headers(), data=big.encode(),
                          content_type="application/json")
    assert too_big.status_code == 413
    assert post(client, t, "x", "text/plain").status_code == 415


class GeneratedFile(io.RawIOBase):
    """A CSV produced as it is read: the test never holds the whole file either."""

    def __init__(self, rows: int):
        self.lines = (f"0770{n:07d},R{n % 22:02d},{'x' * 400}\n".encode() for n in range(rows))
        self.pending = b"phone,round,note\n"

    def readable(self):
        return True

    def read(self, size=-1):
        parts, have = [self.pending], len(self.pending)
        while have < size:
            line = next(self.lines, None)
            if line is None:
                break
            parts.append(line)
            have += len(line)
        block = b"".join(parts)
        out, self.pending = block[:size], block[size:]
        return out


def peak_while_parsing(rows: int) -> int:
    outcome = subscribers.UploadOutcome()
    batches: list[int] = []
    tracemalloc.start()
    try:
        uploads.read_csv(GeneratedFile(rows), lambda b: batches.append(len(b)), outcome,
                         batch_size=50)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.rows == rows and sum(batches) == rows and max(batches) == 50
    return peak


def test_parsing_a_file_four_times_as_long_takes_no_more_memory():
    uploads.read_csv(GeneratedFile(1), lambda b: None, subscribers.UploadOutcome())  # warm up
    short, long = peak_while_parsing(500), peak_while_parsing(2_000)
    # 2,000 rows are ~850 kB of file: holding them would show; one batch of 50 does not grow
    assert long < short * 1.25 and long < 700 * 1024, (short, long)

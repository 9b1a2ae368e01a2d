"""Bulk sends (CSV and JSON, row errors, progress) and the suppression list API."""
from __future__ import annotations

import io
import json

import sqlalchemy as sa
from notify_api_support import EMAIL_TEMPLATE, errors, new_tenant

from services.notify import bulk
from services.notify.models import Notification
from shared.tenancy import Caller


def csv_post(client, tenant, template_id, text: str, **query):
    qs = "&".join(f"{k}={v}" for k, v in {"template_id": template_id, **query}.items())
    return client.post(f"/api/bulk?{qs}", headers=tenant.live, data=text.encode(),
                       content_type="text/csv")


def notifications(notify, **where) -> list[Notification]:
    with notify.runtime.db.read() as session:
        # recipients are encrypted at rest: sorted here, not in SQL
        q = sa.select(Notification).filter_by(**where)
        return sorted(session.scalars(q), key=lambda n: n.recipient or "")


def test_a_csv_sends_good_rows_and_reports_bad_ones_by_row_number(notify, client, tenant,
                                                                   sms_template):
    text = ("Phone Number,name,bin type,language\n"
            "07700 900111,Siân,du,cy\n"
            "0770,Dai,glas,\n"                 # row 2: too short
            "07700 900222,Eleri,,en\n"         # row 3: an empty cell is still a value
            "\n"                               # a blank line is skipped, but counted
            "+44 7700 900333,Huw\n")           # row 5: bin type missing
    r = csv_post(client, tenant, sms_template["id"], text)
    assert r.status_code == 201, r.get_data(as_text=True)
    job = r.get_json()
    assert (job["status"], job["total"], job["accepted"], job["rejected"]) == \
        ("completed", 4, 2, 2)
    assert job["errors"] == [
        {"row": 2, "error": "phone_number Not a valid phone number: too short for +44"},
        {"row": 5, "error": "Missing personalisation: bin type"}]
    sent = notifications(notify, bulk_id=job["id"])
    assert [(n.recipient, n.language, n.status) for n in sent] == [
        ("+447700900111", "cy", "created"), ("+447700900222", "en", "created")]
    assert sent[0].body == "Helo Siân, biniau du yfory."
    assert client.get(f"/api/bulk/{job['id']}", headers=tenant.live).get_json() == job


def test_json_rows_are_validated_one_by_one(notify, client, tenant, sms_template):
    body = {"template_id": sms_template["id"], "rows": [
        {"phone_number": "07700900111", "personalisation": {"name": "a", "bin type": "b"},
         "reference": "r1", "language": "en"},
        "not an object",
        {"phone_number": 7700900111},
        {"email_address": "a@b.cymru", "personalisation": {"name": "a", "bin type": "b"}},
        {"phone_number": "07700900222", "personalisation": {"name": "a", "bin type": "b"},
         "colour": "red"},
    ]}
    job = client.post("/api/bulk", headers=tenant.live, json=body).get_json()
    assert (job["accepted"], job["rejected"]) == (1, 4)
    assert [e["row"] for e in job["errors"]] == [2, 3, 4, 5]
    assert "phone_number" in job["errors"][1]["error"]
    assert "colour was unexpected" in job["errors"][3]["error"]
    [n] = notifications(notify, bulk_id=job["id"])
    assert (n.reference, n.body) == ("r1", "Hello a, b bins tomorrow.")


def test_an_email_csv_sends_to_email_addresses(notify, client, tenant):
    t = client.post("/api/templates", headers=tenant.live, json=EMAIL_TEMPLATE).get_json()
    job = csv_post(client, tenant, t["id"], "email_address,name\nA@B.cymru,Dai\nnope,Huw\n"
                   ).get_json()
    assert (job["accepted"], job["rejected"]) == (1, 1)
    assert [n.recipient for n in notifications(notify, bulk_id=job["id"])] == ["a@b.cymru"]


def test_a_csv_without_a_recipient_column_or_for_the_wrong_template_type_is_a_400(
        client, tenant, sms_template):
    r = csv_post(client, tenant, sms_template["id"], "name,bin type\nDai,du\n")
    assert errors(r)[:2] == (400, "ValidationError") and "phone_number" in errors(r)[2]
    r = csv_post(client, tenant, sms_template["id"], "email_address,name\na@b.cymru,Dai\n")
    assert errors(r) == (400, "BadRequestError",
                         "email template is not suitable for sms notification")


def test_a_file_that_is_not_utf8_stops_the_job_and_says_so(notify, client, tenant,
                                                           sms_template):
    good = b"phone_number,name,bin type\n07700900111,a,b\n"
    r = client.post(f"/api/bulk?template_id={sms_template['id']}", headers=tenant.live,
                    data=good + b"07700900222,\xff\xfe,b\n", content_type="text/csv")
    assert errors(r)[:2] == (400, "ValidationError") and "UTF-8" in errors(r)[2]


def test_progress_is_visible_from_another_request_while_the_upload_runs(notify, client,
                                                                        tenant, sms_template):
    seen = []

    def rows():
        for i in range(1, 8):
            if i in (4, 7):   # between batches of three: ask as another client would
                seen.append(client.get(f"/api/bulk/{upload.job_id}", headers=tenant.live
                                       ).get_json())
            yield bulk.Row(number=i, recipient=f"07700900{i:03d}",
                           personalisation={"name": "x", "bin type": "y"})

    caller = Caller(tenant.id, "penfro", "k", "live", ())
    upload = bulk.Upload(notify.runtime.db, caller, sms_template["id"], "sms", batch=3)
    upload.start()
    upload.run(rows())
    assert [(s["status"], s["accepted"]) for s in seen] == [("processing", 3),
                                                           ("processing", 6)]
    final = client.get(f"/api/bulk/{upload.job_id}", headers=tenant.live).get_json()
    assert (final["status"], final["accepted"], final["total"]) == ("completed", 7, 7)


def test_rows_past_the_maximum_are_not_read_and_errors_are_capped_but_all_counted(
        notify, client, tenant, sms_template):
    caller = Caller(tenant.id, "penfro", "k", "live", ())
    upload = bulk.Upload(notify.runtime.db, caller, sms_template["id"], "sms", batch=4,
                         max_rows=10, max_errors=3)
    upload.start()
    upload.run(bulk.Row(number=i, recipient="bad") for i in range(1, 50))
    job = client.get(f"/api/bulk/{upload.job_id}", headers=tenant.live).get_json()
    assert (job["status"], job["rejected"], job["total"]) == ("completed", 11, 11)
    assert [e["row"] for e in job["errors"]] == [1, 2, 3, 11] and job["errors_truncated"]
    assert "at most 10 rows" in job["errors"][-1]["error"]


def test_a_bulk_send_stops_at_the_daily_limit_row_by_row(notify, client, sms_template):
    tenant = new_tenant(notify, "bach", daily_message_limit=2)
    t = client.post("/api/templates", headers=tenant.live, json={
        "name": "x", "type": "sms", "body": {"cy": "a", "en": "b"}}).get_json()
    job = csv_post(client, tenant, t["id"], "phone_number\n07700900111\n07700900222\n"
                   "07700900333\n").get_json()
    assert (job["accepted"], job["rejected"]) == (2, 1)
    assert job["errors"] == [{"row": 3, "error": "Exceeded send limits (2) for today"}]


def test_bulk_reads_the_body_as_a_stream():
    rows = list(bulk.csv_source(io.BytesIO("\ufeffphone_number,name\n1,a\n".encode()))[1])
    assert [(r.number, r.recipient, r.personalisation) for r in rows] == [(1, "1", {"name": "a"})]
    template_id, rows = bulk.json_source(io.BytesIO(json.dumps(
        {"template_id": "t", "rows": [{"phone_number": "1"}]}).encode()), None)
    assert template_id == "t" and [r.recipient for r in rows] == ["1"]


# -- suppressions --------------------------------------------------------------------

def test_the_suppression_list_is_paginated_and_tenant_scoped(notify, client, tenant):
    other = new_tenant(notify, "ceredigion")
    for n in range(5):
        r = client.post("/api/suppressions", headers=tenant.live,
                        json={"recipient": f"07700 900{n:03d}"})
        assert r.status_code == 201
    client.post("/api/suppressions", headers=other.live, json={"recipient": "07700900999"})
    page1 = client.get("/api/suppressions?page_size=2", headers=tenant.live).get_json()
    assert page1["total"] == 5 and len(page1["suppressions"]) == 2
    assert "page=2" in page1["links"]["next"]
    page3 = client.get("/api/suppressions?page_size=2&page=3", headers=tenant.live).get_json()
    assert len(page3["suppressions"]) == 1 and "next" not in page3["links"]
    seen = {s["recipient"] for p in (1, 2, 3) for s in client.get(
        f"/api/suppressions?page_size=2&page={p}", headers=tenant.live).get_json()["suppressions"]}
    assert seen == {f"+447700900{n:03d}" for n in range(5)}


def test_deleting_a_suppression_lets_sends_through_and_publishes_opted_in(notify, client,
                                                                          tenant, sms_template):
    client.post("/api/suppressions", headers=tenant.live, json={"recipient": "07700900111"})
    values = {"phone_number": "07700 900111", "template_id": sms_template["id"],
              "personalisation": {"name": "a", "bin type": "b"}}
    first = client.post("/v2/notifications/sms", headers=tenant.live, json=values).get_json()
    assert first["status"] == "suppressed"
    r = client.delete("/api/suppressions/sms/07700900111", headers=tenant.live)
    assert r.status_code == 204
    again = client.post("/v2/notifications/sms", headers=tenant.live, json=values).get_json()
    assert again["status"] == "created"
    with notify.runtime.db.read() as session:
        types = session.execute(sa.text("SELECT event_type FROM outbox")).scalars().all()
    assert "subscriber.opted_in" in types
    assert errors(client.delete("/api/suppressions/sms/07700900111", headers=tenant.live))[0] \
        == 404


def test_another_tenant_cannot_remove_a_suppression(notify, client, tenant):
    other = new_tenant(notify, "ceredigion")
    client.post("/api/suppressions", headers=tenant.live, json={"recipient": "07700900111"})
    r = client.delete("/api/suppressions/sms/+447700900111", headers=other.live)
    assert errors(r)[0] == 404
    assert client.get("/api/suppressions", headers=tenant.live).get_json()["total"] == 1

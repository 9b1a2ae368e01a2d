"""Open311's public reads on the whole platform: after a citizen's question was answered from
the staff inbox and its request closed with the team's notes, nothing an unauthenticated caller
can read at /open311/v2 carries the citizen's number, words or the team's answer; the
tenant's key reads the full record."""
from __future__ import annotations

import re

import requests

from tests.conftest import eventually

STAFF_ANSWER = "Ceri, we will ring you on 07700 900311 at 4 Heol y Bont"


def test_a_public_open311_read_has_no_personal_data_and_no_staff_answer(world):
    a = world.a
    inbound = world.url("inbound")
    [conversation] = requests.get(f"{inbound}/api/conversations", headers=a.headers(),
                                  timeout=10).json()["conversations"]
    resp = requests.post(f"{inbound}/api/conversations/{conversation['id']}/messages",
                         headers=a.headers(), json={"body": STAFF_ANSWER}, timeout=10)
    assert resp.status_code == 201, resp.text
    messages = requests.get(f"{inbound}/api/conversations/{conversation['id']}",
                            headers=a.headers(), timeout=10).json()["messages"]
    [reference] = {m["service_request"] for m in messages if m["kind"] == "reply"}
    resp = requests.patch(f"{inbound}/api/service-requests/{reference}", headers=a.headers(),
                          json={"status": "closed", "status_notes": STAFF_ANSWER}, timeout=10)
    assert resp.status_code == 200

    digits = a.citizen[-10:]
    personal = {
        "the citizen's number": re.compile(rf"(\+44\s?|0)?{digits[:4]}\s?{digits[4:7]}\s?"
                                           rf"{digits[7:]}"),
        "the citizen's words": re.compile("Question from"),
        "the staff answer": re.compile(re.escape("Heol y Bont") + "|Ceri"),
        "the Open311 report's address": re.compile(re.escape(f"1 {a.slug.upper()} Street")),
        "its description": re.compile("bin missed"),
    }
    root = f"{inbound}/open311/v2"
    q = {"jurisdiction_id": a.slug}
    paths = [f"requests.{ext}" for ext in ("json", "xml")]
    paths += [f"requests/{ref}.{ext}" for ref in (reference, a.ids["open311_request"])
              for ext in ("json", "xml")]
    paths += [f"tokens/{a.ids['open311_token']}.{ext}" for ext in ("json", "xml")]
    for path in paths:
        text = requests.get(f"{root}/{path}", params=q, timeout=10).text
        found = [what for what, pattern in personal.items() if pattern.search(text)]
        assert not found, f"public {path} shows {found}"

    def full():
        return requests.get(f"{root}/requests/{reference}.json",
                            params={**q, "api_key": a.key}, timeout=10).json()
    record = eventually(full)
    assert record[0]["status_notes"] == STAFF_ANSWER
    assert record[0]["description"].startswith("Question from")

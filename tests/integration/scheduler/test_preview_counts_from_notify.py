"""The campaign preview's cost and the capacity check use each language's real fragment
count, which the scheduler asks notify for (it holds no templates): a Welsh text with
a circumflex is UCS-2 and costs two fragments where its English costs one.

Runs embedded (memory broker + SQLite) and on RabbitMQ + PostgreSQL.
"""
from __future__ import annotations

import datetime as dt

import requests
from notifications_python_client.authentication import create_jwt_token

from shared import smstext

WELSH = ("Helo ((name)). Bydd y casgliad gwastraff gwyrdd yn dŵr glân ddydd Llun; "
         "rhowch eich bin allan erbyn 7 y bore.")
ENGLISH = "Hello ((name)). Green waste is collected on Monday; bin out by 7am."


def test_the_preview_costs_each_language_at_notifys_count_for_the_template(platform):
    urls, admin = platform.urls(), {"Authorization": f"Bearer {platform.settings.admin_token}"}
    tenant = requests.post(urls["notify"] + "/admin/tenants", headers=admin, timeout=5,
                           json={"name": "Cyngor Gwynedd", "slug": "gwynedd"}).json()
    headers = {"Authorization": "Bearer " + create_jwt_token(tenant["api_key"][-36:],
                                                              tenant["id"])}
    template = requests.post(urls["notify"] + "/api/templates", headers=headers, timeout=5, json={
        "name": "Gwastraff gwyrdd", "type": "sms", "body": {"cy": WELSH, "en": ENGLISH}}).json()
    people = [{"phone": "07700900001", "language": "cy"}, {"phone": "07700900002", "language": "cy"},
              {"phone": "07700900003", "language": "en"}, {"phone": "07700900004"}]
    subs = requests.post(urls["scheduler"] + "/api/subscribers", headers=headers, json=people,
                         timeout=5)
    assert subs.status_code < 300, subs.text
    campaign = requests.post(urls["scheduler"] + "/api/campaigns", headers=headers, timeout=5,
                             json={"name": "Gwastraff", "template_id": template["id"],
                                   "channel": "sms", "fragments": 1,
                                   "send_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
                                   .isoformat()}).json()

    cy = smstext.analyse(WELSH).fragments     # an unknown name counts as its placeholder
    en = smstext.analyse(ENGLISH).fragments
    both = smstext.analyse(WELSH + "\n\n" + ENGLISH).fragments
    assert (cy, en) == (2, 1), "the Welsh circumflex makes it UCS-2"
    assert campaign["fragments_by_language"] == {"cy": cy, "en": en, "cy+en": both}

    body = requests.get(f"{urls['scheduler']}/api/campaigns/{campaign['id']}/preview",
                        headers=headers, params={"price_per_fragment": 0.03}, timeout=5).json()
    assert body["fragments_source"] == "template"
    assert body["languages"] == {"cy": 2, "en": 1, "unknown": 1}
    assert body["segments"] == 2 * cy + 1 * en + 1 * both
    assert body["estimated_cost"] == round(body["segments"] * 0.03, 2)
    assert body["capacity"]["segments"] == body["segments"]

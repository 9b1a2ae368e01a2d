"""One warm v2 send's round trips to PostgreSQL: a count, not a time.

Before the API path work (2026-12): 8 statements in 2 transactions, 12 round trips
(docs/benchmarks.md, "The API path").  Now: the tenant's stamp in a read, then the
template's version with the recipient's opt-out and the INSERT in the durable one."""
from __future__ import annotations

import pytest
from notifications_python_client.authentication import create_jwt_token

from services.notify import tenants
from services.notify.wiring import build
from tests.conftest import _base_settings
from tests.fakes.statements import counted

MAX_ROUND_TRIPS = 7     # BEGIN, stamp, ROLLBACK; BEGIN, version + opt-out, INSERT, COMMIT


@pytest.mark.integration
def test_a_warm_send_takes_seven_round_trips_on_postgresql(tmp_path, pg_url):
    svc = build(_base_settings(tmp_path, database_url=pg_url))
    svc.runtime.migrate()
    try:
        with svc.runtime.db.transaction() as session:
            t = tenants.create_tenant(session, svc.runtime.box, name="Penfro", slug="penfro")
            tenants.update_tenant(session, svc.runtime.box, t.id, {"quiet_hours": None})
        headers = {"Authorization": "Bearer " + create_jwt_token(t.api_key[-36:], t.id)}
        client = svc.create_app().test_client()
        template = client.post("/api/templates", headers=headers, json={
            "name": "t", "type": "sms", "body": {"cy": "Helo ((name))", "en": "Hello ((name))"}},
        ).get_json()

        def send():
            return client.post("/v2/notifications/sms", headers=headers, json={
                "phone_number": "07700900111", "template_id": template["id"],
                "personalisation": {"name": "Dai"}})
        assert send().status_code == 201
        with counted(svc.runtime.db.engine) as trips:
            assert send().status_code == 201
        assert trips.round_trips <= MAX_ROUND_TRIPS, (trips.begins, trips.ends, trips.statements)
        assert len(trips.statements) == 3, trips.statements
    finally:
        svc.runtime.db.dispose()

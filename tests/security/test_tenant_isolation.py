"""Tenant isolation: as tenant A, ask for each of tenant B's things by id.

For every route that takes an id, B's id must answer exactly as an id that exists
nowhere (404, the same body): A learns nothing, not even that the row exists.  Writes
(PATCH, DELETE, pause…) change nothing of B's.  Every list A can read contains A's
rows and none of B's.  A fitness test keeps the matrix complete: a new route that
takes an id fails it until it is added here (or named as not tenant data).
"""
from __future__ import annotations

import re
import uuid

import requests

from services.embedded import Platform
from tests.security.world import ADMIN, Owner, World

# (service, rule, method) -> (path with {names} from Owner.ids, JSON body or None)
BY_ID: dict[tuple[str, str, str], tuple[str, dict | None]] = {
    ("notify", "/api/bulk/<job_id>", "GET"): ("/api/bulk/{bulk}", None),
    ("notify", "/api/suppressions/<channel>/<path:recipient>", "DELETE"):
        ("/api/suppressions/sms/{suppressed}", None),
    ("notify", "/api/templates/<template_id>", "GET"): ("/api/templates/{template}", None),
    ("notify", "/api/templates/<template_id>", "PATCH"):
        ("/api/templates/{template}", {"name": "taken over"}),
    ("notify", "/api/templates/<template_id>/preview", "POST"):
        ("/api/templates/{template}/preview", {"personalisation": {"day": "Friday"}}),
    ("notify", "/v2/notifications/<notification_id>", "GET"): ("/v2/notifications/{notification}", None),
    ("notify", "/v2/template/<template_id>", "GET"): ("/v2/template/{template}", None),
    ("notify", "/v2/template/<template_id>/preview", "POST"):
        ("/v2/template/{template}/preview", {"personalisation": {"day": "Friday"}}),
    ("notify", "/v2/template/<template_id>/version/<int:version>", "GET"):
        ("/v2/template/{template}/version/1", None),
    ("inbound", "/api/service-requests/<ident>", "GET"): ("/api/service-requests/{service_request}", None),
    ("inbound", "/api/service-requests/<ident>", "PATCH"):
        ("/api/service-requests/{service_request}", {"status": "closed"}),
    ("inbound", "/api/conversations/<ident>", "GET"): ("/api/conversations/{conversation}", None),
    ("inbound", "/api/conversations/<ident>", "PATCH"):
        ("/api/conversations/{conversation}", {"status": "closed", "assigned_to": "taken over"}),
    ("inbound", "/api/conversations/<ident>/messages", "POST"):
        ("/api/conversations/{conversation}/messages", {"body": "taken over"}),
    ("inbound", "/open311/v2/requests/<ident>.<ext>", "GET"):
        ("/open311/v2/requests/{open311_request}.json?jurisdiction_id={a_slug}&api_key={a_key}", None),
    ("inbound", "/open311/v2/tokens/<token>.<ext>", "GET"):
        ("/open311/v2/tokens/{open311_token}.json?jurisdiction_id={a_slug}", None),
    ("scheduler", "/api/appointments/<path:reference>", "GET"): ("/api/appointments/{appointment}", None),
    ("scheduler", "/api/appointments/<path:reference>", "PATCH"):
        ("/api/appointments/{appointment}", {"language": "en"}),
    ("scheduler", "/api/appointments/<path:reference>", "DELETE"): ("/api/appointments/{appointment}", None),
    ("scheduler", "/api/campaigns/<campaign_id>", "GET"): ("/api/campaigns/{campaign}", None),
    ("scheduler", "/api/campaigns/<campaign_id>", "PATCH"):
        ("/api/campaigns/{campaign}", {"name": "taken over"}),
    ("scheduler", "/api/campaigns/<campaign_id>/archive", "POST"):
        ("/api/campaigns/{campaign}/archive", None),
    ("scheduler", "/api/campaigns/<campaign_id>/pause", "POST"): ("/api/campaigns/{campaign}/pause", None),
    ("scheduler", "/api/campaigns/<campaign_id>/resume", "POST"): ("/api/campaigns/{campaign}/resume", None),
    ("scheduler", "/api/campaigns/<campaign_id>/preview", "GET"): ("/api/campaigns/{campaign}/preview", None),
    ("scheduler", "/api/rounds/<code>", "GET"): ("/api/rounds/{round}", None),
    ("scheduler", "/api/rounds/<code>", "PATCH"): ("/api/rounds/{round}", {"name": "taken over"}),
    ("scheduler", "/api/subscribers/<subscriber_id>", "DELETE"): ("/api/subscribers/{subscriber}", None),
    ("scheduler", "/api/subscribers/<subscriber_id>", "GET"): ("/api/subscribers/{subscriber}", None),
    ("scheduler", "/api/subscribers/<subscriber_id>", "PATCH"):
        ("/api/subscribers/{subscriber}", {"language": "en"}),
}
# The console's pages are signed in by staff (a session), not by an API key: their
# isolation (another council's ids are the console's 404) is tested in tests/console.
CONSOLE = "/console"
# Routes with a variable that is not a tenant's row id, and why.
NOT_TENANT_ROWS = {
    ("notify", "/static/<path:filename>"): "Flask's static files",
    ("notify", "/ops/static/<path:filename>"): "the /ops page's script and styles",
    ("inbound", "/static/<path:filename>"): "Flask's static files",
    ("scheduler", "/static/<path:filename>"): "Flask's static files",
    ("inbound", "/open311/discovery.<ext>"): "a format, not an id",
    ("inbound", "/open311/v2/services.<ext>"): "the public service list (a format)",
    ("inbound", "/open311/v2/services/<code>.<ext>"): "the platform-wide service catalogue",
    ("inbound", "/open311/v2/requests.<ext>"): "a list: see the list test",
}
ADMIN_ONLY = {  # operator routes: a tenant's key never opens them (test_admin_routes_…)
    ("notify", "/admin/tenants/<tenant_id>"), ("notify", "/admin/tenants/<tenant_id>/keys"),
    ("notify", "/admin/tenants/<tenant_id>/keys/<key_id>"),
    ("scheduler", "/internal/tenants/<tenant_id>/next-collection"),
    ("scheduler", "/internal/tenants/<tenant_id>/subscribers"),
    ("notify", "/internal/tenants/<tenant_id>"),
    ("scheduler", "/internal/tenants/<tenant_id>/citizens"),
    ("notify", "/internal/tenants/<tenant_id>/templates/<template_id>/fragments"),
}
LISTS = {
    "notify": ["/v2/notifications", "/v2/templates", "/api/templates", "/api/suppressions",
               "/v2/received-text-messages"],
    "inbound": ["/api/service-requests", "/api/language-preferences", "/api/keywords",
                "/api/reply-texts", "/api/conversations",
                "/open311/v2/requests.json?jurisdiction_id={a_slug}&api_key={a_key}"],
    "scheduler": ["/api/campaigns", "/api/rounds", "/api/subscribers", "/api/appointments"],
}


def _fill(template: str, owner: Owner, asker: Owner) -> str:
    return template.format(**owner.ids, a_slug=asker.slug, a_key=asker.key)


def _nowhere(owner: Owner) -> Owner:
    """An owner whose every id exists nowhere (same shapes as the real ones)."""
    ghost = Owner(owner.slug, owner.tenant, owner.number, owner.citizen, owner.auth_token)
    for name, value in owner.ids.items():
        if re.fullmatch(r"[0-9a-f-]{36}", value):
            ghost.ids[name] = str(uuid.uuid4())
        else:
            ghost.ids[name] = value[:-3] + "999" if name != "open311_request" else "HYS-999999"
    return ghost


def _ask(w: World, service: str, method: str, path: str, body, asker: Owner) -> requests.Response:
    return requests.request(method, w.url(service) + path, json=body, headers=asker.headers(),
                            timeout=10)


def _scrub(text: str, *ids: str) -> str:
    for value in ids:
        text = text.replace(value, "<id>")
    return text


def test_every_route_that_takes_an_id_is_in_the_isolation_matrix(embedded_settings):
    platform = Platform(embedded_settings)       # the apps' routes only: nothing started
    apps = {"notify": platform.notify.create_app(), "inbound": platform.inbound.create_app(),
            "scheduler": platform.scheduler.create_app()}
    missing = []
    for service, app in apps.items():
        for rule in app.url_map.iter_rules():
            if "<" not in rule.rule or (service, rule.rule) in set(NOT_TENANT_ROWS) | ADMIN_ONLY:
                continue
            if service == "notify" and rule.rule.startswith(CONSOLE):
                continue
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                if (service, rule.rule, method) not in BY_ID:
                    missing.append(f"{service} {method} {rule.rule}")
    assert not missing, "routes that take an id but have no isolation case: " + ", ".join(missing)


def test_another_tenants_ids_answer_as_if_they_did_not_exist_and_change_nothing(world):
    a, b = world.a, world.b
    ghost = _nowhere(b)
    leaks = []
    for (service, _rule, method), (template, body) in BY_ID.items():
        theirs = _ask(world, service, method, _fill(template, b, a), body, a)
        nobodys = _ask(world, service, method, _fill(template, ghost, a), body, a)
        seen = (theirs.status_code, _scrub(theirs.text, *b.ids.values()))
        baseline = (nobodys.status_code, _scrub(nobodys.text, *ghost.ids.values()))
        if theirs.status_code != 404 or seen != baseline:
            leaks.append(f"{service} {method} {_rule}: {seen} vs {baseline}")
    assert not leaks, "\n".join(leaks)

    # ids in a body: sending or bulk-sending with B's template is "Template not found"
    for path, body in (("/v2/notifications/sms", {"phone_number": a.citizen, "template_id": "{template}",
                                                  "personalisation": {"day": "Friday"}}),
                       ("/api/bulk", {"template_id": "{template}", "rows": [{"phone_number": a.citizen}]})):
        answers = [_ask(world, "notify", "POST", path, {k: v.format(**o.ids) if isinstance(v, str) else v
                                                        for k, v in body.items()}, a) for o in (b, ghost)]
        assert answers[0].status_code == 400 and "Template not found" in answers[0].text, answers[0].text
        assert _scrub(answers[0].text, *b.ids.values()) == _scrub(answers[1].text, *ghost.ids.values())

    # and B's things are all still there, unchanged
    for service, path in [("notify", "/api/templates/{template}"),
                          ("inbound", "/api/service-requests/{service_request}"),
                          ("scheduler", "/api/campaigns/{campaign}"),
                          ("scheduler", "/api/appointments/{appointment}"),
                          ("scheduler", "/api/rounds/{round}")]:
        mine = _ask(world, service, "GET", _fill(path, b, b), None, b)
        assert mine.status_code == 200 and "taken over" not in mine.text, (path, mine.text)
    assert b.ids["suppressed"] in _ask(world, "notify", "GET", "/api/suppressions", None, b).text
    assert b.ids["subscriber"] in _ask(world, "scheduler", "GET", "/api/subscribers", None, b).text
    campaign = _ask(world, "scheduler", "GET", _fill("/api/campaigns/{campaign}", b, b), None, b).json()
    assert campaign["status"] == "scheduled", campaign
    request = _ask(world, "inbound", "GET", _fill("/api/service-requests/{service_request}", b, b), None, b)
    assert request.json()["status"] == "open"


def test_lists_show_a_tenant_its_own_rows_and_never_anothers(world):
    a, b = world.a, world.b
    for service, template in [(s, t) for s, templates in LISTS.items() for t in templates]:
        seen = _ask(world, service, "GET", _fill(template, a, a), None, a)
        assert seen.status_code == 200, (template, seen.text)
        leaked = [m for m in b.markers() if m in seen.text]
        assert not leaked, f"{template} shows {leaked} of the other tenant"
        if not any(w in template for w in ("keywords", "language", "reply-texts")):
            assert any(m in seen.text for m in a.markers()), f"{template} does not show A's own rows"


def test_open311_shows_another_jurisdictions_requests_without_personal_details(world):
    a, b = world.a, world.b
    seen = requests.get(f"{world.url('inbound')}/open311/v2/requests.json", timeout=10,
                        params={"jurisdiction_id": b.slug, "api_key": a.key})
    assert seen.status_code == 200
    assert b.ids["open311_request"] in seen.text      # Open311 requests are public by design
    assert b.citizen not in seen.text and b.key not in seen.text, seen.text


def test_admin_routes_refuse_a_tenants_key_and_a_wrong_token(world):
    a, b = world.a, world.b
    notify, scheduler = world.url("notify"), world.url("scheduler")
    calls = [("GET", f"{notify}/admin/tenants"), ("POST", f"{notify}/admin/tenants"),
             ("GET", f"{notify}/admin/tenants/{b.tenant['id']}"),
             ("PATCH", f"{notify}/admin/tenants/{b.tenant['id']}"),
             ("POST", f"{notify}/admin/tenants/{b.tenant['id']}/keys"),
             ("DELETE", f"{notify}/admin/tenants/{b.tenant['id']}/keys/{uuid.uuid4()}"),
             ("GET", f"{scheduler}/internal/tenants/{b.tenant['id']}/next-collection?phone={b.citizen}"),
             ("GET", f"{scheduler}/internal/tenants/{b.tenant['id']}/subscribers?phone={b.citizen}"),
             ("GET", f"{notify}/internal/tenants/{b.tenant['id']}"),
             ("GET", f"{scheduler}/internal/tenants/{b.tenant['id']}/citizens?phone={b.citizen}"),
             ("POST", f"{notify}/internal/tenants/{b.tenant['id']}/templates/{uuid.uuid4()}"
                      "/fragments")]
    for method, url in calls:
        for headers, expected in ((a.headers(), 403), ({"Authorization": "Bearer not-the-token"}, 403),
                                  ({}, 401)):
            r = requests.request(method, url, headers=headers, json={}, timeout=10)
            assert r.status_code == expected, (method, url, headers, r.status_code, r.text)
            assert b.citizen not in r.text and b.slug not in r.text
    assert requests.get(f"{notify}/admin/tenants/{b.tenant['id']}", headers=ADMIN, timeout=10).ok

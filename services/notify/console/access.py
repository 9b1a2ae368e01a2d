"""Who may do what in the console: one table, and one decorator every route declares.

Roles are fixed (GOV.UK Notify lets an admin tick permissions per person; a council's
team asked for four roles it can explain): ``admin`` (users, API keys, settings, and
everything else), ``editor`` (templates, campaigns, subscribers, rounds), ``sender``
(send by hand and answer), ``viewer`` (read).  A route declares the one permission it
needs::

    @bp.get("/templates/<template_id>/edit")
    @requires("edit")
    def edit(template_id): ...

``requires`` refuses a signed-out browser with a redirect to sign-in and a role
without the permission with a 403 page.  ``console.init_app`` refuses to start if any
``/console`` route has no declared permission, and the matrix test
(tests/security/test_console_roles.py) walks every route × every role from the app's
``url_map`` and these declarations, so a route added later is checked too.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from flask import abort, g, redirect, request, url_for

from services.notify.console.models import ROLES

PUBLIC = "public"
# permission -> the roles that have it
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),                      # read anything in the tenant
    "send": frozenset({"admin", "sender"}),        # send by hand, answer, assign, close
    "edit": frozenset({"admin", "editor"}),        # templates, campaigns, subscribers, rounds
    "manage": frozenset({"admin"}),                # users, API keys, settings
}


def allowed(role: str | None, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    return role is not None and role in PERMISSIONS[permission]


def requires(permission: str) -> Callable:
    """Declare (and enforce) the permission a console view needs."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}: one of {sorted(PERMISSIONS)}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            staff = g.get("staff")
            if staff is None:
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("console.sign_in", next=target), 303)
            if not allowed(staff.role, permission):
                abort(403)
            return view(*args, **kwargs)

        guarded.console_permission = permission  # type: ignore[attr-defined]
        return guarded

    return decorate


def public(view: Callable) -> Callable:
    """Declare a view anyone may open (sign-in, accepting an invitation, the language)."""
    view.console_permission = PUBLIC  # type: ignore[attr-defined]
    return view


def permission_of(view: Callable) -> str | None:
    return getattr(view, "console_permission", None)


def can(permission: str) -> bool:
    """For templates: whether the signed-in person may (to hide what they may not do)."""
    staff = g.get("staff")
    return allowed(staff.role if staff else None, permission)

"""The route × role matrix, from the app's own routes and their declared permissions.

``python -m services.notify.console.matrix`` prints it as the Markdown table in
docs/console.md (a test checks the two agree, so the documentation follows the code).
"""
from __future__ import annotations

from services.notify.console import console_routes
from services.notify.console.access import PUBLIC, allowed, permission_of
from services.notify.console.models import ROLES


def rows(app) -> list[tuple[str, str, str, dict[str, bool]]]:
    """(methods, rule, permission, {role: allowed}) for every console route, sorted."""
    out = []
    for rule, endpoint, methods in console_routes(app):
        perm = permission_of(app.view_functions[endpoint])
        out.append((" ".join(sorted(methods)), rule, perm,
                    {role: allowed(role, perm) for role in ROLES}))
    return sorted(out, key=lambda r: (r[1], r[0]))


def markdown(app) -> str:
    lines = ["| Route | Methods | Permission | " + " | ".join(ROLES) + " |",
             "|---|---|---|" + "---|" * len(ROLES)]
    for methods, rule, perm, by_role in rows(app):
        marks = ["anyone" if perm == PUBLIC else ("yes" if ok else "no")
                 for ok in by_role.values()]
        lines.append(f"| `{rule}` | {methods} | {perm} | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import tempfile

    from services.notify import wiring
    from shared.config import Settings

    with tempfile.TemporaryDirectory() as d:
        service = wiring.build(Settings.from_env({"HYSBYS_VAR_DIR": d}))
        print(markdown(service.create_app()), end="")
        service.runtime.db.dispose()


if __name__ == "__main__":
    main()

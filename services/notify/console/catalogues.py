"""``python -m services.notify.console.catalogues compile|extract AREA|check``.

* ``compile`` — every area's ``messages.po`` to ``.mo`` (``make console-assets``).
* ``extract AREA`` — the area's strings (Python and templates) into its catalogue:
  new ones are added to ``translations/cy/LC_MESSAGES/messages.po`` for translating,
  gone ones marked obsolete.
* ``check`` — exit 1 listing any untranslated or fuzzy Welsh string (the tests run it).
"""
from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from services.notify.console.i18n import compile_po

HERE = Path(__file__).parent
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n",
                                    "trim_blocks": "true", "lstrip_blocks": "true"}}


def catalogues() -> list[Path]:
    return sorted(HERE.glob("*/translations/*/LC_MESSAGES/messages.po"))


def compile_all() -> None:
    for po in catalogues():
        compile_po(po, po.with_suffix(".mo"))
        print(f"compiled {po.relative_to(HERE)}")


def extract(area: str) -> Path:
    root = HERE / area
    template = Catalog(project="hysbys-console", domain="messages")
    sources = [(root, METHODS)]
    if area == "core":          # the core's catalogue also holds the console's own modules
        sources.append((HERE, [("*.py", "python")]))
    for where, methods in sources:
        for filename, lineno, message, comments, context in extract_from_dir(
                where, methods, keywords=KEYWORDS, options_map=OPTIONS):
            template.add(message, None, [(filename, lineno)], auto_comments=comments,
                         context=context)
    po = root / "translations" / "cy" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True, exist_ok=True)
    if po.exists():
        with po.open("rb") as f:
            catalog = read_po(f, locale="cy")
        catalog.update(template, update_header_comment=False, no_fuzzy_matching=True)
    else:
        catalog = Catalog(locale="cy", project="hysbys-console", domain="messages")
        for msg in template:
            if msg.id:
                catalog.add(msg.id, None, msg.locations, auto_comments=msg.auto_comments)
    catalog.fuzzy = False
    buf = BytesIO()
    write_po(buf, catalog, width=100, omit_header=False, ignore_obsolete=True,
             include_previous=False)
    po.write_bytes(buf.getvalue())
    return po


def problems() -> list[str]:
    out = []
    for po in catalogues():
        with po.open("rb") as f:
            catalog = read_po(f, locale="cy")
        for msg in catalog:
            if not msg.id:
                continue
            strings = msg.string if isinstance(msg.string, tuple) else (msg.string,)
            if msg.fuzzy or not all(strings):
                out.append(f"{po.relative_to(HERE)}: {msg.id!r} has no Welsh")
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["compile"]:
        compile_all()
        return 0
    if argv[:1] == ["extract"] and len(argv) == 2:
        print(extract(argv[1]))
        return 0
    if argv[:1] == ["check"]:
        found = problems()
        print("\n".join(found) or "every Welsh string is translated")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

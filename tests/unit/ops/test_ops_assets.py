"""The /ops page is served whole from notify: no CDN, no other site, no build step."""
from __future__ import annotations

import re

from services.notify import ops


def test_the_page_needs_nothing_from_another_site():
    for path in ops.STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"https?://|//cdn|@import", text), path


def test_the_script_writes_text_never_markup():
    script = (ops.STATIC / "assets" / "ops.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "textContent" in script

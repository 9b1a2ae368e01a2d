"""The console's Inbox area."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from services.notify.console import Area

bp = Area("inbox", __name__, "/inbox", nav=(_l("Inbox"), "index", "view", 60))

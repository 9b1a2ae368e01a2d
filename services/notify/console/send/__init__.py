"""The console's Send area."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from services.notify.console import Area

bp = Area("send", __name__, "/send", nav=(_l("Send"), "index", "view", 70))

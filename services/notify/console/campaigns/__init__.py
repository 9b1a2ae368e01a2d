"""The console's Campaigns area."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from services.notify.console import Area

bp = Area("campaigns", __name__, "/campaigns", nav=(_l("Campaigns"), "index", "view", 50))

"""The console's Rounds area."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from services.notify.console import Area

bp = Area("rounds", __name__, "/rounds", nav=(_l("Rounds"), "index", "view", 45))

"""The console's Audiences area."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from services.notify.console import Area

bp = Area("audiences", __name__, "/audiences", nav=(_l("Audiences"), "index", "view", 40))

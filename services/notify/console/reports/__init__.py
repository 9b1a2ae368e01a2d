"""The console's Reports area."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from services.notify.console import Area

bp = Area("reports", __name__, "/reports", nav=(_l("Reports"), "index", "view", 65))

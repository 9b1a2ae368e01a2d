"""The console's Appointments area."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from services.notify.console import Area

bp = Area("appointments", __name__, "/appointments", nav=(_l("Appointments"), "index", "view", 55))

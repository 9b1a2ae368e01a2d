"""Day and month names in Welsh and English, as a citizen or a team reads them in a
date ("dydd Mawrth 1 Rhagfyr" / "Tuesday 1 December"): one list for the scheduler's
collection dates and the console's recurrence in words."""
from __future__ import annotations

DAYS = {"en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "cy": ("dydd Llun", "dydd Mawrth", "dydd Mercher", "dydd Iau", "dydd Gwener",
               "dydd Sadwrn", "dydd Sul")}
MONTHS = {"en": ("January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December"),
          "cy": ("Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf",
                 "Awst", "Medi", "Hydref", "Tachwedd", "Rhagfyr")}

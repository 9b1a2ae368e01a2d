"""What the scheduler asks notify about a template: each language's fragment count.

The scheduler holds no templates (services never read each other's tables), so a
campaign's cost and capacity come from notify's internal answer
``POST /internal/tenants/<tenant>/templates/<template>/fragments`` (platform admin
token) ``{"personalisation": {...}}`` → ``{"languages": {"cy": {"fragment_count"},
"en": {...}, "cy+en": {...}}}``.  A notify that is down, slow or answering nonsense
gives ``None``: the caller keeps what it had (the figure stored at set-up, or the
team's own), never a 500.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import requests

log = logging.getLogger(__name__)
LANGUAGES = ("cy", "en", "cy+en")


@dataclass
class NotifyTemplates:
    base_url: str
    admin_token: str
    http: requests.Session = field(default_factory=requests.Session)
    timeout: float = 2.0

    def fragments(self, tenant_id: str, template_id: str, personalisation: dict | None
                  ) -> dict[str, int] | None:
        """``{"cy": n, "en": n, "cy+en": n}`` for an SMS template, or None (unknown)."""
        url = (f"{self.base_url.rstrip('/')}/internal/tenants/{tenant_id}/templates/"
               f"{template_id}/fragments")
        try:
            resp = self.http.post(url, json={"personalisation": personalisation or {}},
                                  timeout=self.timeout,
                                  headers={"Authorization": f"Bearer {self.admin_token}"})
        except requests.RequestException as exc:
            log.warning("notify did not answer a fragment count: %s", type(exc).__name__)
            return None
        if resp.status_code != 200:
            if resp.status_code != 404:
                log.warning("notify answered a fragment count with %s", resp.status_code)
            return None
        try:
            languages = resp.json()["languages"] or {}
            counts = {lang: int(languages[lang]["fragment_count"]) for lang in LANGUAGES}
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("notify's fragment count is not the contract: %s", exc)
            return None
        return counts if all(n >= 1 for n in counts.values()) else None

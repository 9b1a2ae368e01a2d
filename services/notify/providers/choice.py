"""Which providers a notification goes to, in which order, built from whose credentials.

* A ``test`` API key only ever reaches the simulator: it never leaves the platform.
* Otherwise the tenant's ``providers`` list, in its order, keeping only those the
  platform allows (``HYSBYS_ALLOWED_PROVIDERS``), that handle the channel and
  for which the tenant has working credentials.
* Optional ``provider_weights`` ({"twilio": 3, "notify": 1}) pick the *first*
  provider at random by weight; the others follow in the tenant's order, as
  failover.  A provider without a weight is failover only.

Adapters are built per tenant from its decrypted credentials and cached per
(tenant id, tenant revision): a PATCH that changes credentials bumps the
revision, so the next send uses the new ones.  Credentials are never logged.
"""
from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from typing import Protocol

from services.notify.providers.base import Provider
from shared.config import Settings
from shared.crypto import SecretBox
from shared.tenancy import Tenant

log = logging.getLogger(__name__)


class AdapterFactory(Protocol):
    """Builds one provider's adapter for one tenant (``providers.twilio`` → TwilioProvider)."""

    name: str

    def build(self, credentials: dict, settings: Settings) -> Provider: ...


def default_factories() -> dict[str, AdapterFactory]:
    from services.notify.providers.govuk_notify import GovukNotifyFactory
    from services.notify.providers.smtp import SmtpFactory
    from services.notify.providers.twilio import TwilioFactory

    return {"twilio": TwilioFactory(), "notify": GovukNotifyFactory(), "smtp": SmtpFactory()}


def credential_problems(provider_credentials: Mapping[str, dict], settings: Settings,
                        factories: Mapping[str, AdapterFactory] | None = None) -> list[str]:
    """What is wrong with credentials an admin PATCHes, one sentence per provider (no values).

    Builds each adapter as a send would (no network), so PATCH can answer a 400
    naming the missing field instead of the send failing later.
    """
    factories = factories if factories is not None else default_factories()
    problems = []
    for name, credentials in provider_credentials.items():
        factory = factories.get(name)
        if factory is None:
            problems.append(f"provider_credentials.{name} is not a provider that takes credentials")
            continue
        try:
            factory.build(dict(credentials or {}), settings)
        except (ValueError, TypeError) as exc:
            problems.append(f"provider_credentials.{name}: {exc}")
    return problems


def is_factory(value: object) -> bool:
    return hasattr(value, "build") and not hasattr(value, "send")


def weighted_order(names: list[str], weights: Mapping[str, float], rng: random.Random) -> list[str]:
    """``names`` with the first one drawn by weight; the rest keep their order."""
    weighted = [(n, float(weights.get(n) or 0)) for n in names]
    weighted = [(n, w) for n, w in weighted if w > 0]
    if not weighted:
        return list(names)
    first = rng.choices([n for n, _ in weighted], weights=[w for _, w in weighted])[0]
    return [first] + [n for n in names if n != first]


class ProviderRegistry:
    """The providers of the platform: shared instances (the simulator) and per-tenant adapters."""

    def __init__(self, settings: Settings, box: SecretBox, shared: Mapping[str, Provider],
                 factories: Mapping[str, AdapterFactory], rng: random.Random | None = None):
        self.settings = settings
        self.box = box
        self.shared = dict(shared)
        self.factories = dict(factories)
        self.rng = rng or random.Random()
        self._cache: dict[str, tuple[int, dict[str, Provider]]] = {}
        self._lock = threading.Lock()

    def adapters(self, tenant: Tenant) -> dict[str, Provider]:
        """The tenant's adapters, built once per tenant revision."""
        with self._lock:
            cached = self._cache.get(tenant.id)
            if cached and cached[0] == tenant.revision:
                return cached[1]
        built = self._build(tenant)
        with self._lock:
            self._cache[tenant.id] = (tenant.revision, built)
        return built

    def _build(self, tenant: Tenant) -> dict[str, Provider]:
        try:
            credentials = (self.box.decrypt_json(tenant.config_encrypted).get("providers") or {})
        except ValueError:
            log.error("tenant %s: stored credentials cannot be decrypted", tenant.slug)
            return {}
        built: dict[str, Provider] = {}
        for name, factory in self.factories.items():
            if name in self.shared or not credentials.get(name):
                continue
            try:
                built[name] = factory.build(dict(credentials[name]), self.settings)
            except (ValueError, TypeError) as exc:
                # the message names missing fields, never their values
                log.error("tenant %s: %s credentials unusable: %s", tenant.slug, name, exc)
        return built

    def choose(self, notification, tenant: Tenant) -> list[Provider]:
        """The providers to try for ``notification``, first choice first."""
        if notification.key_type == "test":
            return [self.shared["simulator"]]
        allowed = self.settings.allowed_providers
        adapters = self.adapters(tenant)
        usable: dict[str, Provider] = {}
        for name in tenant.setting("providers") or []:
            if name not in allowed:
                continue
            provider = self.shared.get(name) or adapters.get(name)
            if provider is not None and notification.channel in provider.channels:
                usable[name] = provider
        order = weighted_order(list(usable), tenant.setting("provider_weights") or {}, self.rng)
        return [usable[name] for name in order]

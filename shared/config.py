"""Typed settings, read from ``HYSBYS_*`` environment variables in one place.

Nothing else in the code base reads the environment.  Services receive a
:class:`Settings` and pass the parts they need down as parameters.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.fernet import Fernet

SERVICES = ("notify", "inbound", "scheduler")
DEFAULT_PORTS = {"notify": 8001, "inbound": 8002, "scheduler": 8003}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    secret_key: str
    admin_token: str
    var_dir: Path = Path("var")
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    public_base_url: str | None = None
    quorum_queues: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    # Providers a send may reach.  "simulator" only by default: a test settings
    # object that forgot to choose can never text a real person.
    allowed_providers: tuple[str, ...] = ("simulator",)
    relay_interval: float = 0.2
    dispatch_interval: float = 0.1
    ticker_interval: float = 1.0
    http_host: str = "127.0.0.1"
    # Worker and ticker processes have no HTTP API: they serve /metrics here when set.
    metrics_port: int | None = None
    # How services reach each other's APIs (HYSBYS_NOTIFY_URL, …); default 127.0.0.1:<port>.
    internal_urls: Mapping[str, str] = field(default_factory=dict)
    # Where the Twilio adapter sends (HYSBYS_TWILIO_BASE_URL); None: api.twilio.com.  For a
    # fake Twilio in tests or a Twilio-compatible gateway; the operator's setting, never a tenant's.
    twilio_base_url: str | None = None
    # Client timeout of each provider call (Twilio, GOV.UK Notify, SMTP): HYSBYS_PROVIDER_TIMEOUT_SECONDS.
    provider_timeout: float = 10.0
    # The notify sweeper: a hand-off stuck in `sending` this long is settled "outcome
    # unknown" or, never handed off, requeued (HYSBYS_SWEEP_STALE_SECONDS); it looks every
    # HYSBYS_SWEEP_INTERVAL_SECONDS.
    sweep_stale_seconds: float = 600.0
    sweep_interval_seconds: float = 30.0
    # prometheus-client's multiprocess directory (PROMETHEUS_MULTIPROC_DIR) for `hysbys serve`'s
    # gunicorn workers; unset, serve uses <var_dir>/metrics/<service>-<port>, emptied at start.
    prometheus_multiproc_dir: Path | None = None
    # Where the dispatchers share sender throttles and provider circuits (HYSBYS_REDIS_URL,
    # e.g. redis://redis:6379/0); None: in notify's database.  HYSBYS_REDIS_PREFIX starts
    # every key, so deployments (or test runs) sharing one Redis keep apart.
    redis_url: str | None = None
    redis_prefix: str = "hysbys"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, first_run_dir: Path | None = None
                 ) -> Settings:
        """Build settings from the environment.

        ``HYSBYS_SECRET_KEY`` and ``HYSBYS_ADMIN_TOKEN`` are generated into
        ``var/`` on the first embedded run so that ``make run`` needs no set-up.
        """
        env = os.environ if env is None else env
        var_dir = Path(env.get("HYSBYS_VAR_DIR", first_run_dir or "var"))
        database_url = env.get("HYSBYS_DATABASE_URL") or f"sqlite:///{var_dir}/hysbys.db"
        broker_url = env.get("HYSBYS_BROKER_URL") or "memory://"
        secret_key = env.get("HYSBYS_SECRET_KEY") or _generated(
            var_dir / "secret.key", lambda: Fernet.generate_key().decode())
        admin_token = env.get("HYSBYS_ADMIN_TOKEN") or _generated(
            var_dir / "admin.token", lambda: secrets.token_urlsafe(24))
        ports = {}
        for svc in SERVICES:
            name = f"HYSBYS_{svc.upper()}_PORT"
            raw = env.get(name, str(DEFAULT_PORTS[svc]))
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ConfigError(f"{name} must be a port number, got {raw!r}")
            ports[svc] = int(raw)
        providers = tuple(p.strip() for p in env.get(
            "HYSBYS_ALLOWED_PROVIDERS", "simulator,twilio,notify,smtp").split(",") if p.strip())
        try:
            Fernet(secret_key.encode())
        except ValueError as exc:
            raise ConfigError("HYSBYS_SECRET_KEY must be a Fernet key "
                              "(32 url-safe base64-encoded bytes)") from exc
        return cls(
            database_url=database_url,
            broker_url=broker_url,
            secret_key=secret_key,
            admin_token=admin_token,
            var_dir=var_dir,
            ports=ports,
            public_base_url=env.get("HYSBYS_PUBLIC_BASE_URL") or None,
            quorum_queues=env.get("HYSBYS_QUORUM_QUEUES", "").lower() in ("1", "true", "yes"),
            log_level=env.get("HYSBYS_LOG_LEVEL", "INFO").upper(),
            log_json=env.get("HYSBYS_LOG_FORMAT", "json") == "json",
            allowed_providers=providers,
            http_host=env.get("HYSBYS_HTTP_HOST", "127.0.0.1"),
            metrics_port=int(env["HYSBYS_METRICS_PORT"]) if env.get("HYSBYS_METRICS_PORT")
            else None,
            internal_urls={svc: env[f"HYSBYS_{svc.upper()}_URL"].rstrip("/") for svc in SERVICES
                           if env.get(f"HYSBYS_{svc.upper()}_URL")},
            twilio_base_url=(env.get("HYSBYS_TWILIO_BASE_URL") or "").rstrip("/") or None,
            provider_timeout=_seconds(env, "HYSBYS_PROVIDER_TIMEOUT_SECONDS", 10.0),
            sweep_stale_seconds=_seconds(env, "HYSBYS_SWEEP_STALE_SECONDS", 600.0),
            sweep_interval_seconds=_seconds(env, "HYSBYS_SWEEP_INTERVAL_SECONDS", 30.0),
            prometheus_multiproc_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"])
            if env.get("PROMETHEUS_MULTIPROC_DIR") else None,
            redis_url=env.get("HYSBYS_REDIS_URL") or None,
            redis_prefix=env.get("HYSBYS_REDIS_PREFIX") or "hysbys",
        )

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    def public_url(self, service: str) -> str:
        """The address providers use to reach ``service`` (signatures are computed on it)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://127.0.0.1:{self.ports[service]}"

    def internal_url(self, service: str) -> str:
        """Where another service's API answers (containers: set HYSBYS_<SERVICE>_URL)."""
        return self.internal_urls.get(service) or f"http://127.0.0.1:{self.ports[service]}"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _generated(path: Path, make) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value

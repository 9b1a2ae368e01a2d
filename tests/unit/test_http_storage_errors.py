"""A database that cannot store (full disk, read-only file, gone server) is a clear 503,
``/readyz`` says so, and the CLI says so in one line (docs/reliability.md, finding F2).

A read-only SQLite file is made the honest way, by opening the service's own file with
``mode=ro``: the tests run as root, for whom ``chmod`` changes nothing.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from notifications_python_client.authentication import create_jwt_token

from services import cli
from services.notify import tenants
from services.notify.wiring import build
from shared.bus import Bus
from shared.crypto import SecretBox
from shared.db import Database, encrypt_with
from shared.http import RETRY_AFTER_SECONDS, STORE_UNAVAILABLE, base_app
from shared.runtime import Runtime

NUMBER = "07700900123"
UNAVAILABLE = {"status_code": 503,
               "errors": [{"error": "ServiceUnavailableError", "message": STORE_UNAVAILABLE}]}


def read_only(db: Database, box: SecretBox) -> Database:
    """The same SQLite file as ``db``, opened read-only, with the service's key bound as
    the Runtime binds it (a send hashes the recipient before it writes)."""
    path = db.engine.url.database
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true",
                              connect_args={"check_same_thread": False})
    encrypt_with(engine, box)
    return Database(engine, db.service)


@pytest.fixture
def notify(embedded_settings):
    svc = build(embedded_settings)
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


def _auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def test_a_send_to_a_read_only_database_is_a_503_that_writes_nothing(notify, caplog):
    runtime = notify.runtime
    with runtime.db.transaction() as session:
        created = tenants.create_tenant(session, runtime.box, name="Ynys", slug="ynys")
    client = notify.create_app().test_client()
    template = client.post("/api/templates", headers=_auth(created.api_key),
                           json={"name": "bins", "type": "sms",
                                 "body": {"en": "Bins tomorrow", "cy": "Biniau yfory"}})
    assert template.status_code == 201, template.get_data(as_text=True)
    writable, runtime.db = runtime.db, read_only(runtime.db, runtime.box)
    try:
        with caplog.at_level(logging.ERROR, logger="shared.http"):
            r = client.post("/v2/notifications/sms", headers=_auth(created.api_key),
                            json={"phone_number": NUMBER, "reference": "ro",
                                  "template_id": template.get_json()["id"]})
        ready = client.get("/readyz")
    finally:
        runtime.db.dispose()
        runtime.db = writable

    assert r.status_code == 503, r.get_data(as_text=True)
    assert r.get_json() == UNAVAILABLE
    assert r.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "readonly database" in logged
    assert NUMBER[1:] not in logged and "INSERT" not in logged
    with writable.read() as session:
        assert session.execute(sa.text("SELECT count(*) FROM notifications")).scalar() == 0
        assert session.execute(sa.text(
            "SELECT count(*) FROM outbox WHERE event_type = 'notification.requested'")).scalar() == 0
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"].startswith("error: OperationalError")
    assert client.get("/readyz").get_json()["checks"]["database"] == "ok"


class _Runtime:
    """What :func:`base_app` needs of a runtime, and no more."""

    service = "notify"

    def readiness(self) -> dict[str, str]:
        return {"database": "ok"}

    def refresh_gauges(self) -> None:
        pass


def _app_raising(exc: Exception) -> Flask:
    app, _api = base_app(_Runtime(), "t", "t")

    @app.post("/boom")
    def boom():
        raise exc

    return app


def _operational(message: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("INSERT INTO notifications (phone) VALUES (?)",
                                   (NUMBER,), sqlite3.OperationalError(message))


@pytest.mark.parametrize("error", [
    _operational("database or disk is full"),
    _operational("attempt to write a readonly database"),
    sa.exc.InterfaceError("SELECT 1", None, Exception("connection already closed")),
    sa.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"),
])
def test_a_store_that_cannot_take_the_request_is_a_503_whatever_the_cause(error, caplog):
    with caplog.at_level(logging.ERROR, logger="shared.http"):
        r = _app_raising(error).test_client().post("/boom")
    assert (r.status_code, r.get_json()) == (503, UNAVAILABLE)
    assert r.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert NUMBER not in caplog.text


def test_a_database_error_that_is_a_bug_stays_a_500():
    bug = sa.exc.IntegrityError("INSERT …", (), sqlite3.IntegrityError("UNIQUE constraint failed"))
    r = _app_raising(bug).test_client().post("/boom")
    assert r.status_code == 500
    assert r.get_json()["errors"][0]["error"] == "Exception"
    assert "Retry-After" not in r.headers


def test_readiness_probes_a_write_not_only_a_read(embedded_settings, tmp_path):
    settings = embedded_settings
    db = Database.connect(settings.database_url, "notify")
    with db.transaction() as session:
        session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    runtime = Runtime(settings=settings, service="notify", db=db, bus=Bus("memory://"),
                      box=SecretBox(settings.secret_key), migrations=tmp_path)
    assert runtime.readiness()["database"] == "ok"
    runtime.db = read_only(db, runtime.box)
    with runtime.db.read() as session:           # it still reads…
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    check = runtime.readiness()["database"]      # …but cannot write
    assert check.startswith("error: OperationalError") and "readonly" in check, check
    runtime.db.dispose()
    db.dispose()


def _env(monkeypatch, tmp_path: Path, database_url: str) -> None:
    monkeypatch.setenv("HYSBYS_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HYSBYS_DATABASE_URL", database_url)
    monkeypatch.setenv("HYSBYS_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("HYSBYS_ADMIN_TOKEN", "t")


def test_a_database_file_that_cannot_be_opened_stops_the_cli_with_one_line(
        monkeypatch, tmp_path, capsys):
    (tmp_path / "hysbys-notify.db").mkdir()      # a folder where the file should be
    url = f"sqlite:///{tmp_path}/hysbys.db"
    _env(monkeypatch, tmp_path, url)
    assert cli.main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err == f"hysbys: cannot write the database {url}: unable to open database file\n"


def test_the_cli_never_prints_the_database_password(monkeypatch, tmp_path, capsys):
    _env(monkeypatch, tmp_path, "postgresql+psycopg2://hysbys:s3cret@127.0.0.1:1/hysbys")
    assert cli.main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hysbys: cannot write the database "
                          "postgresql+psycopg2://hysbys:***@127.0.0.1:1/hysbys: "), err
    assert "s3cret" not in err and err.count("\n") == 1

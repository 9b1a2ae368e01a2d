"""Message bodies and replies at rest: Fernet tokens in the table, clear text to the code."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.crypto import SecretBox
from shared.db import Database as Db
from shared.db import EncryptedText, encrypt_with, insert_for, make_engine


class Base(DeclarativeBase):
    pass


class Reply(Base):
    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    body: Mapped[str | None] = mapped_column(EncryptedText)


def _database(box: SecretBox | None) -> Db:
    db = Db(make_engine("sqlite://", "test"), "test")
    Base.metadata.create_all(db.engine)
    if box is not None:
        encrypt_with(db.engine, box)
    return db


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key().decode())


def _stored(db: Db) -> list[str | None]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT body FROM replies ORDER BY id")).scalars())


def test_every_way_of_writing_stores_a_token_and_reads_back_the_text(box):
    db = _database(box)
    with db.transaction() as session:
        session.add(Reply(id=1, body="Question from Ceri"))                      # ORM
        session.execute(sa.insert(Reply), [{"id": 2, "body": "MISSED"},          # executemany
                                           {"id": 3, "body": None}])
        session.execute(insert_for(session, Reply).values(                       # multi-row VALUES
            [{"id": 4, "body": "Diolch"}, {"id": 5, "body": "STOP"}]))
        stmt = insert_for(session, Reply).values(id=5, body="STOP now")          # upsert
        session.execute(stmt.on_conflict_do_update(index_elements=["id"],
                                                   set_={"body": stmt.excluded.body}))
        session.execute(sa.update(Reply).where(Reply.id == 2).values(body="MISSED bin"))
    stored = _stored(db)
    assert stored[2] is None
    assert all(v.startswith("gAAAAA") for i, v in enumerate(stored) if i != 2)
    assert [box.decrypt(v) for i, v in enumerate(stored) if i != 2] == [
        "Question from Ceri", "MISSED bin", "Diolch", "STOP now"]
    with db.read() as session:
        assert session.scalars(sa.select(Reply.body).order_by(Reply.id)).all() == [
            "Question from Ceri", "MISSED bin", None, "Diolch", "STOP now"]
        assert session.get(Reply, 1).body == "Question from Ceri"


def test_a_row_written_in_clear_before_encryption_is_read_as_it_is(box):
    db = _database(box)
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO replies (id, body) VALUES (1, 'written in 2025')"))
    with db.read() as session:
        assert session.get(Reply, 1).body == "written in 2025"


def test_each_engine_uses_its_own_key_and_a_wrong_key_is_an_error_not_ciphertext(box):
    mine, theirs = _database(box), _database(SecretBox(Fernet.generate_key().decode()))
    with mine.transaction() as session:
        session.add(Reply(id=1, body="secret"))
    token = _stored(mine)[0]
    with theirs.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO replies (id, body) VALUES (1, :t)"), {"t": token})
    with theirs.read() as session, pytest.raises(ValueError, match="HYSBYS_SECRET_KEY"):
        session.get(Reply, 1)


def test_an_engine_without_a_key_refuses_to_write_rather_than_store_clear_text():
    db = _database(None)
    with pytest.raises(sa.exc.StatementError, match="encrypt_with"), db.transaction() as session:
        session.add(Reply(id=1, body="Question"))
        session.flush()
    assert _stored(db) == []


def test_an_encrypted_column_cannot_be_searched_in_sql_but_can_be_tested_for_null(box):
    db = _database(box)
    with db.transaction() as session:
        session.add_all([Reply(id=1, body="MISSED"), Reply(id=2, body=None)])
    for search in (lambda c: c == "MISSED", lambda c: c.like("%MISS%"), lambda c: c.in_(["x"]),
                   lambda c: c.contains("MISS"), lambda c: c.desc()):
        with pytest.raises(TypeError, match="encrypted at rest"):
            search(Reply.body)
    with db.read() as session:
        assert session.scalars(sa.select(Reply.id).where(Reply.body.is_not(None))).all() == [1]
        assert session.scalars(sa.select(Reply.id).where(Reply.body == None)).all() == [2]  # noqa: E711

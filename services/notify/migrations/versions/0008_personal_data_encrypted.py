"""personal data encrypted at rest, with keyed hashes for look-ups

Recipients (phone numbers, email addresses) become Fernet tokens like bodies
(``shared.db.EncryptedText``); the suppression list is found by
``recipient_hash`` (``shared.pii.lookup_hash``: HMAC-SHA256, key from the platform
key by HKDF), its primary key moving from the clear recipient to the hash.

Existing rows: the suppression list (kept for as long as the tenant sends) is
encrypted and hashed here, with the key ``hysbys db upgrade`` runs with (or
``HYSBYS_SECRET_KEY`` for the ``alembic`` command).  Notifications' recipients,
received texts' numbers and bulk-job errors written in clear are read as they are
and go with retention, as bodies did (docs/personal-data.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:10:00
"""
from alembic import op
import sqlalchemy as sa

from shared import pii

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:   # varchar -> text is a catalogue change only on PostgreSQL
        op.alter_column("notifications", "recipient", type_=sa.Text(),
                        existing_type=sa.String(320))
        op.alter_column("received_texts", "user_number", type_=sa.Text(),
                        existing_type=sa.String(32))
        op.alter_column("bulk_jobs", "errors", type_=sa.Text(), existing_type=sa.JSON(),
                        postgresql_using="errors::text")
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(sa.Column("recipient_hash", sa.String(64), nullable=True))
        batch.alter_column("recipient", type_=sa.Text(), existing_type=sa.String(320))
    pii.convert_rows(op.get_bind(), "suppressions", ("tenant_id", "channel", "recipient"),
                     encrypt=("recipient",), hashes={"recipient_hash": "recipient"})
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_constraint("pk_suppressions", type_="primary")
        batch.alter_column("recipient_hash", existing_type=sa.String(64), nullable=False)
        batch.create_primary_key("pk_suppressions", ["tenant_id", "channel", "recipient_hash"])


def downgrade() -> None:
    raise NotImplementedError("personal data is not decrypted back into clear columns")

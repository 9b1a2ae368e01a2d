"""personal data encrypted at rest, with keyed hashes for look-ups

Citizens' numbers, and a service request's contact details, names, address, UPRN,
postcode, ids, photo link and attributes become Fernet tokens like bodies
(``shared.db.EncryptedText`` / ``EncryptedJSON``).  The reply context
(``conversations``) and ``language_preferences`` are found by the number's keyed
hash (``shared.pii.lookup_hash``), their primary keys moving from the clear number
to the hash.

Existing rows: conversations, language preferences and service requests are
encrypted and hashed here, with the key ``hysbys db upgrade`` runs with (or
``HYSBYS_SECRET_KEY`` for the ``alembic`` command).  ``inbound_messages.from_number``
written in clear is read as it is and goes with retention, as bodies did
(docs/personal-data.md).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03 07:20:00
"""
from alembic import op
import sqlalchemy as sa

from shared import pii

revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None

REQUEST_TEXT = {"address": sa.Text(), "address_id": sa.String(64), "zipcode": sa.String(16),
                "media_url": sa.Text(), "phone": sa.String(32), "email": sa.String(320),
                "first_name": sa.String(200), "last_name": sa.String(200),
                "account_id": sa.String(200), "device_id": sa.String(200)}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:   # varchar -> text is a catalogue change only on PostgreSQL
        op.alter_column("inbound_messages", "from_number", type_=sa.Text(),
                        existing_type=sa.String(32))
        for column, was in REQUEST_TEXT.items():
            op.alter_column("service_requests", column, type_=sa.Text(), existing_type=was)
        op.alter_column("service_requests", "attributes", type_=sa.Text(),
                        existing_type=sa.JSON(), postgresql_using="attributes::text")
    for table, column in (("conversations", "recipient"), ("language_preferences", "phone")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(f"{column}_hash", sa.String(64), nullable=True))
            batch.alter_column(column, type_=sa.Text(), existing_type=sa.String(32))
        pii.convert_rows(op.get_bind(), table, ("tenant_id", column), encrypt=(column,),
                         hashes={f"{column}_hash": column})
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.alter_column(f"{column}_hash", existing_type=sa.String(64), nullable=False)
            batch.create_primary_key(f"pk_{table}", ["tenant_id", f"{column}_hash"])
    pii.convert_rows(op.get_bind(), "service_requests", ("id",), encrypt=tuple(REQUEST_TEXT),
                     encrypt_json=("attributes",))


def downgrade() -> None:
    raise NotImplementedError("personal data is not decrypted back into clear columns")

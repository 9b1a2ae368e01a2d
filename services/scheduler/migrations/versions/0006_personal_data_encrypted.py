"""personal data encrypted at rest, with keyed hashes for look-ups

Subscribers' phone, email and attributes (address, UPRN, round...) and
appointments' phone, email and personalisation become Fernet tokens like bodies
(``shared.db.EncryptedText`` / ``EncryptedJSON``).  Beside them, keyed hashes
(``shared.pii``: HMAC-SHA256, key from the platform key by HKDF): ``phone_hash`` /
``email_hash`` for every look-up by number or address (de-duplication, opt-outs,
"this number's appointments"), ``attribute_hashes`` for audience filters.  The
unique constraints move from (tenant_id, phone|email) to (tenant_id, *_hash).

Existing rows are encrypted and hashed here, with the key ``hysbys db upgrade``
runs with (or ``HYSBYS_SECRET_KEY`` for the ``alembic`` command): a subscriber
written in clear is found, filtered and de-duplicated like a new one.  About
60 µs a subscriber (docs/personal-data.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:30:00
"""
from alembic import op
import sqlalchemy as sa

from shared import pii

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    using = {"postgresql_using": "attributes::text"} if postgres else {}
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("phone_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("email_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("attribute_hashes", sa.JSON(), nullable=True))
        batch.alter_column("phone", type_=sa.Text(), existing_type=sa.String(20))
        batch.alter_column("email", type_=sa.Text(), existing_type=sa.String(320))
        batch.alter_column("attributes", type_=sa.Text(), existing_type=sa.JSON(),
                           existing_nullable=False, **using)
        batch.drop_constraint("uq_subscribers_tenant_id_phone", type_="unique")
        batch.drop_constraint("uq_subscribers_tenant_id_email", type_="unique")
    pii.convert_rows(op.get_bind(), "subscribers", ("id",), encrypt=("phone", "email"),
                     encrypt_json=("attributes",),
                     hashes={"phone_hash": "phone", "email_hash": "email"},
                     attribute_hashes_of=("attribute_hashes", "attributes"))
    with op.batch_alter_table("subscribers") as batch:
        batch.create_unique_constraint("uq_subscribers_tenant_id_phone_hash",
                                       ["tenant_id", "phone_hash"])
        batch.create_unique_constraint("uq_subscribers_tenant_id_email_hash",
                                       ["tenant_id", "email_hash"])

    using = {"postgresql_using": "personalisation::text"} if postgres else {}
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("phone_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("email_hash", sa.String(64), nullable=True))
        batch.alter_column("phone", type_=sa.Text(), existing_type=sa.String(20))
        batch.alter_column("email", type_=sa.Text(), existing_type=sa.String(320))
        batch.alter_column("personalisation", type_=sa.Text(), existing_type=sa.JSON(),
                           existing_nullable=False, **using)
        batch.create_index("ix_appointments_phone_hash", ["phone_hash"])
        batch.create_index("ix_appointments_email_hash", ["email_hash"])
    pii.convert_rows(op.get_bind(), "appointments", ("id",), encrypt=("phone", "email"),
                     encrypt_json=("personalisation",),
                     hashes={"phone_hash": "phone", "email_hash": "email"})

    # an appointment reminder's personalisation is the appointment's (a patient's name)
    if postgres:
        op.alter_column("occurrences", "personalisation", type_=sa.Text(),
                        existing_type=sa.JSON(), existing_nullable=False,
                        postgresql_using="personalisation::text")
    pii.convert_rows(op.get_bind(), "occurrences", ("id",), encrypt_json=("personalisation",))


def downgrade() -> None:
    raise NotImplementedError("personal data is not decrypted back into clear columns")

"""conversations (the staff inbox), tenant service types, public status notes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:00:00
"""
from alembic import op
import sqlalchemy as sa
import shared.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversation_threads',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('phone', sa.Text(), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('assigned_to', sa.String(length=320), nullable=True),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_message_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_threads')),
    sa.UniqueConstraint('tenant_id', 'phone_hash',
                        name=op.f('uq_conversation_threads_tenant_id_phone_hash'))
    )
    op.create_index('ix_conversation_threads_tenant_last', 'conversation_threads',
                    ['tenant_id', 'last_message_at', 'id'], unique=False)
    op.create_table('conversation_messages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('conversation_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('body', shared.db.EncryptedText(), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('keyword', sa.String(length=32), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('reference', sa.String(length=16), nullable=True),
    sa.Column('service_request', sa.String(length=16), nullable=True),
    sa.Column('campaign_id', sa.String(length=36), nullable=True),
    sa.Column('appointment_id', sa.String(length=36), nullable=True),
    sa.Column('appointment_reference', sa.String(length=64), nullable=True),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('inbound_message_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('author', sa.String(length=320), nullable=True),
    sa.Column('at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_messages')),
    sa.UniqueConstraint('notification_id', name=op.f('uq_conversation_messages_notification_id')),
    sa.UniqueConstraint('inbound_message_id',
                        name=op.f('uq_conversation_messages_inbound_message_id'))
    )
    op.create_index('ix_conversation_messages_conversation_at', 'conversation_messages',
                    ['conversation_id', 'at'], unique=False)
    op.create_table('service_type_sets',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('types', sa.JSON(), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_service_type_sets'))
    )
    with op.batch_alter_table('service_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_status_notes', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('service_requests', schema=None) as batch_op:
        batch_op.drop_column('public_status_notes')
    op.drop_table('service_type_sets')
    op.drop_index('ix_conversation_messages_conversation_at', table_name='conversation_messages')
    op.drop_table('conversation_messages')
    op.drop_index('ix_conversation_threads_tenant_last', table_name='conversation_threads')
    op.drop_table('conversation_threads')

"""card payments from the portal: each organisation's Stripe account, the payments customers
started, and the processor's webhook events

Revision ID: l1cardpay001
Revises: k1owncredit1
Create Date: 2026-12-07 01:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "l1cardpay001"
down_revision: str | Sequence[str] | None = "k1owncredit1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('card_payment_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('secret_key_enc', sa.Text(), nullable=True),
    sa.Column('webhook_secret_enc', sa.Text(), nullable=True),
    sa.Column('account_code', sa.String(length=64), nullable=True),
    sa.Column('book_fees', sa.Boolean(), nullable=False),
    sa.Column('updated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_card_payment_settings_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_payment_settings')),
    sa.UniqueConstraint('org_id', name=op.f('uq_card_payment_settings_org_id'))
    )
    op.create_table('card_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('session_id', sa.String(length=255), nullable=True),
    sa.Column('payment_id', sa.String(length=255), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', store.types.Money(), nullable=False),
    sa.Column('received', store.types.Money(), nullable=True),
    sa.Column('fee', store.types.Money(), nullable=True),
    sa.Column('refunded', store.types.Money(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failure', sa.String(length=255), nullable=True),
    sa.Column('paid_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('books_payment_id', sa.String(length=64), nullable=True),
    sa.Column('booked_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('booking_error', sa.String(length=255), nullable=True),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_card_payments_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_card_payments_invoice_id_invoices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_card_payments_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_payments')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_card_payments_payment_id')),
    sa.UniqueConstraint('session_id', name=op.f('uq_card_payments_session_id'))
    )
    with op.batch_alter_table('card_payments', schema=None) as batch_op:
        batch_op.create_index('ix_card_payments_org_id_invoice_id', ['org_id', 'invoice_id'], unique=False)

    op.create_table('processor_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=False),
    sa.Column('received_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_processor_events_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processor_events')),
    sa.UniqueConstraint('org_id', 'event_id', name=op.f('uq_processor_events_org_id_event_id'))
    )
    with op.batch_alter_table('processor_events', schema=None) as batch_op:
        batch_op.create_index('ix_processor_events_org_id_processed_at', ['org_id', 'processed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('processor_events', schema=None) as batch_op:
        batch_op.drop_index('ix_processor_events_org_id_processed_at')
    op.drop_table('processor_events')
    with op.batch_alter_table('card_payments', schema=None) as batch_op:
        batch_op.drop_index('ix_card_payments_org_id_invoice_id')
    op.drop_table('card_payments')
    op.drop_table('card_payment_settings')

"""the customer's portal: a key per customer's link, what a customer may ask for, and the
promises, disputes and plan requests they make

Revision ID: i1portal0001
Revises: h1lease00001
Create Date: 2026-12-06 22:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "i1portal0001"
down_revision: str | Sequence[str] | None = "h1lease00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('portal_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('plan_max_instalments', sa.Integer(), nullable=False),
    sa.Column('plan_max_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_portal_settings_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_settings')),
    sa.UniqueConstraint('org_id', name=op.f('uq_portal_settings_org_id'))
    )
    op.create_table('portal_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rotated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_portal_access_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_portal_access_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_access')),
    sa.UniqueConstraint('contact_id', name=op.f('uq_portal_access_contact_id'))
    )
    with op.batch_alter_table('portal_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_access_org_id'), ['org_id'], unique=False)

    op.create_table('invoice_disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attachment_name', sa.String(length=255), nullable=True),
    sa.Column('attachment_type', sa.String(length=100), nullable=True),
    sa.Column('attachment', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_invoice_disputes_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_disputes_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_invoice_disputes_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name=op.f('fk_invoice_disputes_resolved_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_disputes'))
    )
    with op.batch_alter_table('invoice_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_disputes_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('ix_invoice_disputes_org_id_status', ['org_id', 'status'], unique=False)

    op.create_table('payment_promises',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('pay_by', sa.Date(), nullable=False),
    sa.Column('amount', store.types.Money(precision=19, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_before', store.types.Money(precision=19, scale=4), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_payment_promises_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_promises_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_payment_promises_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_promises'))
    )
    with op.batch_alter_table('payment_promises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_promises_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('ix_payment_promises_org_id_contact_id', ['org_id', 'contact_id'], unique=False)

    op.create_table('plan_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('instalments', sa.Integer(), nullable=False),
    sa.Column('first_on', sa.Date(), nullable=False),
    sa.Column('every_days', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_plan_requests_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_plan_requests_decided_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_plan_requests_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_plan_requests_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plan_id'], ['payment_plans.id'], name=op.f('fk_plan_requests_plan_id_payment_plans'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_requests'))
    )
    with op.batch_alter_table('plan_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_requests_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('ix_plan_requests_org_id_status', ['org_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('plan_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_requests_org_id_status')
        batch_op.drop_index(batch_op.f('ix_plan_requests_invoice_id'))

    op.drop_table('plan_requests')
    with op.batch_alter_table('payment_promises', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_promises_org_id_contact_id')
        batch_op.drop_index(batch_op.f('ix_payment_promises_invoice_id'))

    op.drop_table('payment_promises')
    with op.batch_alter_table('invoice_disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_disputes_org_id_status')
        batch_op.drop_index(batch_op.f('ix_invoice_disputes_invoice_id'))

    op.drop_table('invoice_disputes')
    with op.batch_alter_table('portal_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_access_org_id'))

    op.drop_table('portal_access')
    op.drop_table('portal_settings')

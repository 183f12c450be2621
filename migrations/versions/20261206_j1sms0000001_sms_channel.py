"""texts: the contacts' numbers from the books, each organisation's Twilio settings, the
numbers that opted out, and the texts sent

Revision ID: j1sms0000001
Revises: i1portal0001
Create Date: 2026-12-06 23:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "j1sms0000001"
down_revision: str | Sequence[str] | None = "i1portal0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mobile', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))

    op.create_table('sms_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('account_sid', sa.String(length=64), nullable=True),
    sa.Column('auth_token_enc', sa.Text(), nullable=True),
    sa.Column('sender', sa.String(length=32), nullable=True),
    sa.Column('cost_per_segment', store.types.Money(), nullable=True),
    sa.Column('cost_currency', sa.String(length=3), nullable=True),
    sa.Column('updated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_sms_settings_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_settings')),
    sa.UniqueConstraint('org_id', name=op.f('uq_sms_settings_org_id'))
    )
    op.create_table('sms_opt_outs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('keyword', sa.String(length=32), nullable=False),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_sms_opt_outs_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_opt_outs')),
    sa.UniqueConstraint('org_id', 'number', name=op.f('uq_sms_opt_outs_org_id_number'))
    )
    op.create_table('sms_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('action_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['actions.id'], name=op.f('fk_sms_messages_action_id_actions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_sms_messages_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_sms_messages_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_messages')),
    sa.UniqueConstraint('sid', name=op.f('uq_sms_messages_sid'))
    )
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_messages_action_id'), ['action_id'], unique=False)
        batch_op.create_index('ix_sms_messages_org_id_number', ['org_id', 'number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_messages_org_id_number')
        batch_op.drop_index(batch_op.f('ix_sms_messages_action_id'))
    op.drop_table('sms_messages')
    op.drop_table('sms_opt_outs')
    op.drop_table('sms_settings')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('country')
        batch_op.drop_column('phone')
        batch_op.drop_column('mobile')

"""crm: profile merge, tickets SLA, import (filled by the CRM work)

Citizens gain address, VIP, flag, merged_into (a merged-away profile stays as a tombstone) and
updated_at; tickets gain the first-response SLA, resolution time, source and creator; every
step of a ticket (reply, status, assignee) is a row in ticket_events.

Revision ID: 0030
Revises: 0020
Create Date: 2026-11-25 16:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('vip', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('flagged', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_citizens_merged_into'), ['merged_into'], unique=False)
        batch_op.create_foreign_key('fk_citizens_merged_into', 'citizens', ['merged_into'], ['id'])

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('response_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='message', nullable=False))
        batch_op.add_column(sa.Column('created_by', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_response_due_at'), ['response_due_at'], unique=False)
        batch_op.create_foreign_key('fk_tickets_created_by', 'users', ['created_by'], ['id'])
    # tickets written before the SLA existed: their first response was due when they were
    op.execute("UPDATE tickets SET response_due_at = due_at WHERE response_due_at IS NULL")

    op.create_table(
        'ticket_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_events_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_table('ticket_events')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tickets_created_by', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tickets_response_due_at'))
        for column in ('created_by', 'source', 'updated_at', 'resolved_at', 'first_response_at', 'response_due_at'):
            batch_op.drop_column(column)
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_citizens_merged_into', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_citizens_merged_into'))
        for column in ('updated_at', 'merged_into', 'flagged', 'vip', 'address'):
            batch_op.drop_column(column)

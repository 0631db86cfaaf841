"""voice: calls (通话记录) and agents' SIP extensions (the call-center work)

Revision ID: 0060
Revises: 0050
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0060'
down_revision = '0050'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'calls',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('direction', sa.String(length=8), nullable=False),
        sa.Column('caller', sa.String(length=64), nullable=False),
        sa.Column('callee', sa.String(length=64), nullable=False),
        sa.Column('sip_call_id', sa.String(length=128), nullable=False),
        sa.Column('conversation_id', sa.String(length=36), nullable=True),
        sa.Column('citizen_id', sa.Integer(), nullable=True),
        sa.Column('agent_ids', sa.JSON(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('ivr_path', sa.JSON(), nullable=False),
        sa.Column('group', sa.String(length=64), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('disposition', sa.String(length=32), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('wait_seconds', sa.Double(), nullable=True),
        sa.Column('talk_seconds', sa.Double(), nullable=True),
        sa.Column('recording_path', sa.String(length=400), nullable=True),
        sa.Column('recording_seconds', sa.Double(), nullable=True),
        sa.Column('segments', sa.JSON(), nullable=False),
        sa.Column('memo', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    for column in ('caller', 'callee', 'conversation_id', 'citizen_id', 'agent_id', 'outcome'):
        op.create_index(f'ix_calls_{column}', 'calls', [column])
    op.create_index('ix_calls_started_at', 'calls', ['started_at'])
    op.create_table(
        'agent_extensions',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('sip_uri', sa.String(length=200), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id'),
    )


def downgrade() -> None:
    op.drop_table('agent_extensions')
    for column in ('caller', 'callee', 'conversation_id', 'citizen_id', 'agent_id', 'outcome', 'started_at'):
        op.drop_index(f'ix_calls_{column}', table_name='calls')
    op.drop_table('calls')

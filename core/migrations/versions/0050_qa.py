"""qa: QA items, rules, score sheets, sampling, inspections, appeals

One QA item per closed conversation (unique conversation id: exactly once), versioned rule sets
and score sheets, inspection tasks, inspections and re-review appeals. On PostgreSQL the items'
search terms get a GIN index (transcript search without a sequential scan).

Revision ID: 0050
Revises: 0040
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0050'
down_revision = '0040'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('qa_rule_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version')
    )
    op.create_table('qa_sheets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('pass_mark', sa.Float(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version')
    )
    op.create_table('qa_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=36), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('agent_ids', sa.JSON(), nullable=False),
    sa.Column('group', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('handed_off', sa.Boolean(), nullable=False),
    sa.Column('handoff_reason', sa.String(length=32), nullable=True),
    sa.Column('wait_seconds', sa.Float(), nullable=True),
    sa.Column('first_response_seconds', sa.Float(), nullable=True),
    sa.Column('handle_seconds', sa.Float(), nullable=True),
    sa.Column('longest_gap_seconds', sa.Float(), nullable=True),
    sa.Column('transfers', sa.Integer(), nullable=False),
    sa.Column('disposition', sa.String(length=32), nullable=True),
    sa.Column('csat', sa.Integer(), nullable=True),
    sa.Column('ticket_ids', sa.JSON(), nullable=False),
    sa.Column('message_count', sa.Integer(), nullable=False),
    sa.Column('recording_path', sa.String(length=500), nullable=True),
    sa.Column('recording_seconds', sa.Float(), nullable=True),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.Column('hits', sa.JSON(), nullable=False),
    sa.Column('hit_count', sa.Integer(), nullable=False),
    sa.Column('complaint', sa.Boolean(), nullable=False),
    sa.Column('ruleset_version', sa.Integer(), nullable=False),
    sa.Column('sheet_version', sa.Integer(), nullable=False),
    sa.Column('auto_score', sa.Float(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id')
    )
    op.create_index('ix_qa_items_agent_day', 'qa_items', ['agent_id', 'day'], unique=False)
    op.create_index(op.f('ix_qa_items_closed_at'), 'qa_items', ['closed_at'], unique=False)
    op.create_index('ix_qa_items_day_agent', 'qa_items', ['day', 'agent_id'], unique=False)
    op.create_index(op.f('ix_qa_items_group'), 'qa_items', ['group'], unique=False)
    op.create_index(op.f('ix_qa_items_status'), 'qa_items', ['status'], unique=False)
    op.create_table('qa_appeals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=False),
    sa.Column('final_score', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['qa_items.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id')
    )
    op.create_index(op.f('ix_qa_appeals_agent_id'), 'qa_appeals', ['agent_id'], unique=False)
    op.create_index(op.f('ix_qa_appeals_status'), 'qa_appeals', ['status'], unique=False)
    op.create_table('qa_inspections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('inspector_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sheet_version', sa.Integer(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('comments', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inspector_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['qa_items.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_qa_inspections_item_id'), 'qa_inspections', ['item_id'], unique=False)
    op.create_table('qa_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('inspector_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['inspector_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['qa_items.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id')
    )
    op.create_index(op.f('ix_qa_tasks_inspector_id'), 'qa_tasks', ['inspector_id'], unique=False)
    op.create_index(op.f('ix_qa_tasks_status'), 'qa_tasks', ['status'], unique=False)
    op.create_table('qa_volume_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('conversations', sa.Integer(), nullable=False),
    sa.Column('handed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'channel', 'hour', name='uq_qa_volume_day')
    )
    op.create_index('ix_qa_conversations_closed_at', 'conversations', ['closed_at'], unique=False)
    op.create_index('ix_qa_conversations_started_at', 'conversations', ['started_at'], unique=False)
    op.create_index('ix_qa_events_kind_created_at', 'conversation_events', ['kind', 'created_at'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE INDEX ix_qa_items_search ON qa_items USING gin (string_to_array(search_text, ' '))")
        # the reports read only these columns: an index-only scan instead of the wide rows
        op.execute(
            'CREATE INDEX ix_qa_items_report ON qa_items (day, agent_id) INCLUDE ("group", score, passed, hit_count,'
            ' status, handed_off, wait_seconds, first_response_seconds, handle_seconds, csat, handoff_reason)'
        )


def downgrade() -> None:
    op.drop_index('ix_qa_events_kind_created_at', table_name='conversation_events')
    op.drop_index('ix_qa_conversations_started_at', table_name='conversations')
    op.drop_index('ix_qa_conversations_closed_at', table_name='conversations')
    for table in ('qa_volume_days', 'qa_tasks', 'qa_inspections', 'qa_appeals', 'qa_items', 'qa_sheets', 'qa_rule_sets'):
        op.drop_table(table)

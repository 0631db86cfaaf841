"""security: user administration, the audit log's actor and IP, an append-only audit log

Users gain active, must_change_password, skill_groups, password_changed_at, updated_at. Audit rows
gain the actor's name and IP (a failed login names no user row). On PostgreSQL a trigger refuses
UPDATE, DELETE and TRUNCATE of audit_log unless the transaction has set `zwkf.audit_retention`
to 'on' (what core.audit.sweep does, the only deleter); SQLite relies on the application.

Revision ID: 0040
Revises: 0030
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0040'
down_revision = '0030'
branch_labels = None
depends_on = None

GUARD = """
CREATE OR REPLACE FUNCTION zwkf_audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('zwkf.audit_retention', true), '') <> 'on' THEN
        RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('skill_groups', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('ip', sa.String(length=64), server_default='', nullable=False))
        batch_op.create_index('ix_audit_log_action', ['action'], unique=False)
        batch_op.create_index('ix_audit_log_actor', ['actor'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(GUARD)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION zwkf_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION zwkf_audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS zwkf_audit_log_append_only()")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_actor')
        batch_op.drop_index('ix_audit_log_action')
        batch_op.drop_column('ip')
        batch_op.drop_column('actor')
    with op.batch_alter_table('users', schema=None) as batch_op:
        for column in ('updated_at', 'password_changed_at', 'skill_groups', 'must_change_password', 'active'):
            batch_op.drop_column(column)

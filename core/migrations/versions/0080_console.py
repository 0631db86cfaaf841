"""console: drafts and other console state (filled by the console work)

Revision ID: 0080
Revises: 0070
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0080'
down_revision = '0070'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

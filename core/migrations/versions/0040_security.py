"""security: users, sessions, login throttling, audit log, content review (filled by the security work)

Revision ID: 0040
Revises: 0030
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0040'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

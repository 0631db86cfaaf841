"""console: canned responses, internal notes (filled by the console work)

Revision ID: 0020
Revises: 0010
Create Date: 2026-11-25 16:00:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0020'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

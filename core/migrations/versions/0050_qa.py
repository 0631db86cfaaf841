"""qa: QA items, rules, score sheets, sampling, inspections, appeals (filled by the QA work)

Revision ID: 0050
Revises: 0040
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0050'
down_revision = '0040'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

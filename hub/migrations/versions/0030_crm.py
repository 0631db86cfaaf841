"""crm: profile merge, tickets SLA, import (filled by the CRM work)

Revision ID: 0030
Revises: 0020
Create Date: 2026-11-25 16:00:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0030'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

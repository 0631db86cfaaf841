"""Bring a database to the newest schema (Alembic), from code or `python -m core.migrate`."""

from __future__ import annotations

import sys

from alembic import command
from alembic.config import Config

from core.config import PROJECT_ROOT, load_settings


def upgrade(database_url: str) -> None:
    """Run every pending migration. Synchronous: call it before any event loop starts."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "core" / "migrations"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else load_settings().database_url
    upgrade(url)
    print(f"[migrate] schema up to date: {url.split('@')[-1]}")

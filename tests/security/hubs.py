"""Hub workers without Rasa for the account, audit and operations tests: a migrated SQLite (or the
PostgreSQL of TEST_SYSTEM_DB=postgresql) database seeded in demo mode, one Redis prefix."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.config import load_settings
from hub.seed import seed
from tests.support import TEST_REDIS_URL, Hubs, start_hubs, system_database, unique_prefix

DEMO = {"admin1": "admin1pass", "agent1": "agent1pass", "agent2": "agent2pass", "editor1": "editor1pass",
        "super1": "super1pass"}


@dataclass
class Running:
    hubs: Hubs
    database_url: str
    prefix: str
    log_dir: Path

    @property
    def url(self) -> str:
        return self.hubs.urls[0]

    def log(self, index: int = 0) -> str:
        return (self.log_dir / f"hub{index}.log").read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_hubs(tmp: Path, count: int = 2, config: dict[str, dict] | None = None) -> Iterator[Running]:
    with system_database(tmp) as database_url:
        prefix = unique_prefix()
        settings = load_settings().with_overrides(
            {"storage.database_url": database_url, "storage.redis_url": TEST_REDIS_URL,
             "storage.redis_key_prefix": prefix}
        )
        asyncio.run(seed(settings))
        env = {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
               "RASA_URL": "http://127.0.0.1:9"}
        hubs = start_hubs(env, count, tmp / "logs", config=config)
        try:
            yield Running(hubs, database_url, prefix, tmp / "logs")
        finally:
            hubs.stop()

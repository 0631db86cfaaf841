"""Fixtures for the whole suite: real Redis, real SQLite and PostgreSQL, a real trained Rasa
model served by a real Rasa server, and real hub processes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.config import Settings, load_settings
from core.migrate import upgrade
from core.secrets import action_webhook_url
from hub.seed import seed
from tests.support import (
    ROOT,
    TEST_REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    start_hub,
    stop_process,
    system_database,
    unique_prefix,
)

LOG_DIR = ROOT / "var" / "test-logs"
# The shipped config keeps the bureau's working hours (a night-time handoff is told when people are
# back): the suite runs at any hour, so its hubs queue around the clock unless a test turns hours on.
os.environ.setdefault("ZWKF_HANDOFF__WORKING_HOURS__ENABLED", "false")


def _sqlite_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'hub.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind the hub supports."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path)
        upgrade(url)
        yield url
        return
    url, why = create_postgres_database()
    if url is None:
        pytest.skip(why)
    upgrade(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings().with_overrides(
        {
            "storage.database_url": database_url,
            "storage.redis_url": TEST_REDIS_URL,
            "storage.redis_key_prefix": unique_prefix(),
            "bot.rasa_url": "http://127.0.0.1:9",  # overridden where a test needs Rasa
        }
    )


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(settings.redis_url, decode_responses=True)
    yield client
    async for key in client.scan_iter(match=f"{settings.redis_prefix}*"):
        await client.delete(key)
    await client.aclose()


@dataclass
class RunningSystem:
    """A seeded database, a Rasa server with the real trained model, and hub workers."""

    hub_url: str
    hub_urls: list[str]
    rasa_url: str
    database_url: str
    redis_url: str
    prefix: str


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    """The whole system, started once for the suite (SQLite by default; TEST_SYSTEM_DB=postgresql)."""
    with system_database(tmp_path_factory.mktemp("system")) as database_url:
        yield from _running_system(database_url)


def _running_system(database_url: str) -> Iterator[RunningSystem]:
    from bot import ensure_model, start_rasa, stop_rasa, wait_ready

    prefix = unique_prefix()
    base = load_settings().with_overrides(
        {"storage.database_url": database_url, "storage.redis_url": TEST_REDIS_URL, "storage.redis_key_prefix": prefix}
    )
    asyncio.run(seed(base))
    hub_ports = [free_port(), free_port()]
    rasa_port = free_port()
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    model = ensure_model()
    os.environ["RASA_REDIS_KEY_PREFIX"] = prefix.strip(":")
    rasa = start_rasa(
        model,
        rasa_port,
        action_webhook_url(f"http://127.0.0.1:{hub_ports[0]}", base.secret_key),
        TEST_REDIS_URL,
        LOG_DIR / "rasa.log",
    )
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "RASA_URL": rasa_url,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
    }
    hubs = []
    try:
        for index, port in enumerate(hub_ports):
            hubs.append(start_hub(env, port, LOG_DIR / f"hub{index}.log"))
        wait_ready(rasa_url, timeout=240, proc=rasa)
        urls = [f"http://127.0.0.1:{port}" for port in hub_ports]
        yield RunningSystem(urls[0], urls, rasa_url, database_url, TEST_REDIS_URL, prefix)
    finally:
        for hub in hubs:
            stop_process(hub)
        stop_rasa(rasa)

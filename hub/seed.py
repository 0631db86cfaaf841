"""First-run data: the demo staff accounts and the demo knowledge base (only into an empty KB)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.auth import Accounts
from hub.config import PROJECT_ROOT, Settings
from hub.db import make_engine, make_sessionmaker
from hub.redis_client import Keys, make_redis
from kb_sync import KbStore, read_jsonl


async def seed(settings: Settings, kb_file: Path | None = None) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    redis = make_redis(settings.redis_url)
    try:
        accounts = Accounts(sessions, redis, Keys(settings.redis_prefix), 1)
        for user in settings.get("demo.users", []) or []:
            await accounts.ensure(user["username"], user["password"], user["display_name"], user["role"])
        store = KbStore(sessions)
        loaded = 0
        if await store.count() == 0:
            path = kb_file or PROJECT_ROOT / str(settings.get("demo.kb_file", "kb_sync/demo/kb.jsonl"))
            loaded = await store.upsert(read_jsonl(path), status="published", editor="demo")
            await redis.incr(Keys(settings.redis_prefix).kb_version())
        return {"kb_entries_loaded": loaded}
    finally:
        await redis.aclose()
        await engine.dispose()


async def published_questions(settings: Settings) -> list[str]:
    """Standard and similar questions of the published KB: the bot's kb_question examples."""
    engine = make_engine(settings.database_url)
    try:
        entries = await KbStore(make_sessionmaker(engine)).published()
    finally:
        await engine.dispose()
    return [text for entry in entries for text in (entry.question, *entry.similar)]


def run_seed(settings: Settings) -> dict[str, int]:
    return asyncio.run(seed(settings))

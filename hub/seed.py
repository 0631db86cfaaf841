"""First-run data: the demo staff accounts and the demo knowledge base (only into an empty KB)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from core.db import make_engine, make_sessionmaker
from core.redis_client import Keys, make_redis
from handoff import CannedStore
from hub.auth import Accounts
from kb_sync import KbStore, read_jsonl

# Shared 快捷回复 for the demo ({姓名}, {坐席}, {日期} are filled in when an agent inserts one).
DEMO_CANNED = [
    {"shortcut": shortcut, "title": title, "text": text}
    for shortcut, title, text in (
        ("hi", "问候", "{姓名}，您好！我是人工客服{坐席}，很高兴为您服务，请问有什么可以帮您？"),
        ("wait", "请稍候", "{姓名}，请您稍等，我正在为您查询相关信息。"),
        ("cl", "材料清单", "具体所需材料以窗口公布为准，您也可以登录政务服务网查询办事指南。"),
        ("bye", "结束语", "感谢您的咨询，祝您生活愉快！如有其他问题，欢迎随时联系我们。"),
        ("ticket", "已登记工单", "{姓名}，您的诉求已于{日期}登记为工单，相关部门会在 1 个工作日内联系您。"),
    )
]


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
        canned = await CannedStore(sessions).seed(DEMO_CANNED)
        return {"kb_entries_loaded": loaded, "canned_responses_loaded": canned}
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

"""First-run data: the demo staff accounts and the demo knowledge base (only into an empty KB).

Accounts: only in demo mode (`demo.enabled`, what `make run` uses; production turns it off), and only
into a database with no account at all — a running system never recreates an account an
administrator disabled or changed. Without demo mode the first administrator comes from
`python -m hub.seed admin <username> [显示名]`, which prints a one-time password to change at first login.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from core.db import make_engine, make_sessionmaker
from core.redis_client import Keys, make_redis
from handoff import CannedStore
from hub.auth import Accounts, initial_password
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


def demo_mode(settings: Settings) -> bool:
    return bool(settings.get("demo.enabled", False))


async def seed(settings: Settings, kb_file: Path | None = None) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    redis = make_redis(settings.redis_url)
    try:
        accounts = Accounts(sessions, redis, Keys(settings.redis_prefix))
        users = 0
        if demo_mode(settings) and await accounts.count() == 0:
            # the published demo passwords, no forced change: demo mode only
            for user in settings.get("demo.users", []) or []:
                await accounts.create(user["username"], user["password"], user["display_name"], user["role"])
                users += 1
        store = KbStore(sessions)
        loaded = 0
        if await store.count() == 0:
            path = kb_file or PROJECT_ROOT / str(settings.get("demo.kb_file", "kb_sync/demo/kb.jsonl"))
            loaded = await store.upsert(read_jsonl(path), status="published", editor="demo")
            await redis.incr(Keys(settings.redis_prefix).kb_version())
        canned = await CannedStore(sessions).seed(DEMO_CANNED)
        return {"demo_users_created": users, "kb_entries_loaded": loaded, "canned_responses_loaded": canned}
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


async def create_admin(settings: Settings, username: str, display_name: str) -> str:
    """An administrator with a one-time password (changed at first login); returns the password."""
    engine = make_engine(settings.database_url)
    redis = make_redis(settings.redis_url)
    try:
        accounts = Accounts(make_sessionmaker(engine), redis, Keys(settings.redis_prefix))
        password = initial_password()
        await accounts.create(username, password, display_name, "admin", must_change=True)
        return password
    finally:
        await redis.aclose()
        await engine.dispose()


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "admin":
        print("usage: python -m hub.seed admin <username> [display name]", file=sys.stderr)
        return 2
    from core.config import load_settings
    from core.errors import Refusal

    username = argv[1]
    try:
        password = asyncio.run(create_admin(load_settings(), username, argv[2] if len(argv) > 2 else "管理员"))
    except Refusal as problem:
        print(problem.reason, file=sys.stderr)
        return 1
    print(f"管理员 {username} 已创建。初始密码（仅显示这一次，首次登录后须修改）：{password}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

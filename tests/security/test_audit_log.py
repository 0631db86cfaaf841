"""The audit log (操作日志): one `record` for every package, search by user / action / date / text,
retention by the sweeper, and on PostgreSQL append-only in the database itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import func, select

from core import audit
from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.models import AuditLog, User, utcnow
from hub.auth import StaffUser


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator:
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def add(sessions, actor, action: str, target: str, ip: str = "", detail=None, days_ago: float = 0) -> None:
    async with sessions() as session, session.begin():
        row = audit.record(session, actor, action, target, ip, detail)
        if days_ago:
            row.created_at = utcnow() - timedelta(days=days_ago)


async def staff(sessions, username: str, role: str) -> StaffUser:
    async with sessions() as session, session.begin():
        user = User(username=username, display_name=username, password_hash="-", role=role)
        session.add(user)
        await session.flush()
        return StaffUser(user.id, username, username, role)


async def test_search_by_user_action_date_and_text(sessions) -> None:
    admin = await staff(sessions, "admin1", "admin")
    await add(sessions, admin, "user_create", "user:7", "10.1.1.1", {"username": "agent7"})
    await add(sessions, "ghost", "login_failed", "user:ghost", "10.9.9.9", {"reason": "bad_password"})
    await add(sessions, await staff(sessions, "agent1", "agent"), "view_citizen", "citizen:42", "10.1.1.2",
              {"conversation": "c-100%"})
    await add(sessions, admin, "export", "citizens", "10.1.1.1", days_ago=10)

    async def found(**filters) -> list[str]:
        items, total = await audit.search(sessions, audit.AuditQuery(**filters))
        assert total == len(items)
        return [item["action"] for item in items]

    assert sorted(await found(actor="admin1")) == ["export", "user_create"]
    assert await found(action="login_failed") == ["login_failed"]
    assert await found(text="10.9.9") == ["login_failed"]
    assert await found(text="citizen:42") == ["view_citizen"]
    assert await found(text="100%") == ["view_citizen"]  # found in the detail
    assert await found(text="%") == ["view_citizen"]  # a LIKE wildcard is matched literally
    assert sorted(await found(since=utcnow() - timedelta(days=1))) == ["login_failed", "user_create", "view_citizen"]
    assert await found(until=utcnow() - timedelta(days=5)) == ["export"]
    # a row written with only a user id (the screen-pop's) is found, and shown, by the user's name
    agent = await staff(sessions, "agent2", "agent")
    async with sessions() as session, session.begin():
        session.add(AuditLog(user_id=agent.id, action="view_citizen", target="citizen:7", data={}))
    items, _ = await audit.search(sessions, audit.AuditQuery(actor="agent2"))
    assert [(i["action"], i["actor"]) for i in items] == [("view_citizen", "agent2")]
    items, _ = await audit.search(sessions, audit.AuditQuery(action="login_failed"))
    assert items[0]["actor"] == "ghost" and items[0]["user_id"] is None and items[0]["action_name"] == "登录失败"


async def test_the_sweeper_deletes_only_rows_past_retention(sessions) -> None:
    await add(sessions, "old", "login", "user:1", days_ago=200)
    await add(sessions, "recent", "login", "user:1", days_ago=100)
    await add(sessions, "today", "login", "user:1")
    assert await audit.sweep(sessions, 180) == 1
    assert await audit.sweep(sessions, 0) == 0  # 0 = keep forever
    async with sessions() as session:
        actors = sorted((await session.execute(select(AuditLog.actor))).scalars())
    assert actors == ["recent", "today"]


async def test_postgresql_refuses_changing_or_deleting_audit_rows(settings: Settings, sessions) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("enforced in the database on PostgreSQL only (SQLite: by the application)")
    await add(sessions, "admin1", "user_create", "user:9", days_ago=400)
    await add(sessions, "admin1", "login", "user:1")
    conn = await asyncpg.connect(settings.database_url)
    try:
        for statement in (
            "UPDATE audit_log SET actor = 'someone-else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE actor = 'admin1'") == 2
    finally:
        await conn.close()
    # the retention sweeper is the one deleter it lets through
    assert await audit.sweep(sessions, 180) == 1
    async with sessions() as session:
        assert (await session.execute(select(func.count(AuditLog.id)))).scalar_one() == 1

"""Accounts on the real database (SQLite and PostgreSQL) and the real Redis: password rules, lock-out,
throttling per IP, timing for unknown users, bcrypt's 72-byte limit, forced change, timeouts, and
ending every session of a user as every worker sees it."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.errors import Refusal
from core.models import AuditLog
from core.redis_client import Keys
from hub.auth import Accounts, Policy, password_problem


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator:
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def accounts_for(sessions, redis: aioredis.Redis, settings: Settings, **policy: int) -> Accounts:
    return Accounts(sessions, redis, Keys(settings.redis_prefix), policy=Policy(**policy))


async def refusal_of(coro) -> Refusal:
    with pytest.raises(Refusal) as caught:
        await coro
    return caught.value


async def audit_actions(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        rows = await session.execute(select(AuditLog.action, AuditLog.actor, AuditLog.ip).order_by(AuditLog.id))
        return [tuple(r) for r in rows]


def test_password_rules_name_what_is_wrong_in_chinese() -> None:
    assert "至少需要 10 个字符" in password_problem("Abc12345", "zhangmin")
    assert "用户名" in password_problem("zhangmin2024", "zhangmin")
    assert "用户名" in password_problem("ZhangMin", "zhangmin", min_length=8)
    assert "常见" in password_problem("qwertyuiop", "zhangmin")
    assert "常见" in password_problem("1234567890", "zhangmin")
    assert "常见" in password_problem("aaaaaaaaaaaa", "zhangmin")
    assert "72 字节" in password_problem("密" * 25, "zhangmin")
    assert password_problem("社保窗口-Lk82qz", "zhangmin") is None
    assert password_problem("correct horse battery", "zhangmin") is None


async def test_lock_out_after_repeated_failures_and_an_admin_lifts_it(sessions, redis_client, settings) -> None:
    accounts = accounts_for(sessions, redis_client, settings, max_failures=3, lockout_seconds=600)
    await accounts.create("wangfang", "Kb-editor-2026", "王芳", "kb_editor")
    for _ in range(3):
        assert (await refusal_of(accounts.login("wangfang", "wrong-password", "10.0.0.5"))).status == 401
    locked = await refusal_of(accounts.login("wangfang", "Kb-editor-2026", "10.0.0.5"))
    assert locked.status == 429 and "锁定" in locked.reason and "10 分钟" in locked.reason
    assert (await accounts.locked(["wangfang", "nobody"])).keys() == {"wangfang"}
    assert await accounts.unlock("WangFang")
    result = await accounts.login("WangFang", "Kb-editor-2026", "10.0.0.5")
    assert result.user.username == "wangfang" and not result.must_change
    actions = [a for a, _actor, _ip in await audit_actions(sessions)]
    assert actions == ["login_failed"] * 3 + ["login_locked", "login_failed", "login"]
    assert {ip for *_rest, ip in await audit_actions(sessions)} == {"10.0.0.5"}


async def test_one_address_trying_many_accounts_is_throttled(sessions, redis_client, settings) -> None:
    accounts = accounts_for(sessions, redis_client, settings, ip_max_failures=4)
    await accounts.create("agent7", "Agent7-pass-2026", "张七", "agent")
    for name in ("a1", "a2", "a3", "a4"):
        await refusal_of(accounts.login(name, "guess-guess", "192.0.2.9"))
    throttled = await refusal_of(accounts.login("agent7", "Agent7-pass-2026", "192.0.2.9"))
    assert throttled.status == 429 and "分钟后再试" in throttled.reason
    # another address is not affected
    assert (await accounts.login("agent7", "Agent7-pass-2026", "192.0.2.10")).user.username == "agent7"


async def test_unknown_users_cost_as_much_as_wrong_passwords(sessions, redis_client, settings) -> None:
    accounts = accounts_for(sessions, redis_client, settings, max_failures=100, ip_max_failures=100)
    await accounts.create("timing1", "Timing-pass-2026", "计时", "agent")

    async def seconds(username: str) -> float:
        started = time.perf_counter()
        await refusal_of(accounts.login(username, "not-the-password", "198.51.100.1"))
        return time.perf_counter() - started

    known = statistics.median([await seconds("timing1") for _ in range(5)])
    unknown = statistics.median([await seconds(f"ghost{i}") for i in range(5)])
    assert unknown > known * 0.6, (known, unknown)


async def test_passwords_past_bcrypts_72_bytes_are_a_refusal_not_a_crash(sessions, redis_client, settings) -> None:
    accounts = accounts_for(sessions, redis_client, settings)
    await accounts.create("long1", "Long-pass-2026", "长密码", "agent")
    assert (await refusal_of(accounts.login("long1", "x" * 100, "203.0.113.1"))).status == 401
    assert (await refusal_of(accounts.login("long1", "密" * 5000, "203.0.113.1"))).status == 401
    session = await accounts.login("long1", "Long-pass-2026", "203.0.113.1")
    problem = await refusal_of(accounts.change_password(session.user.id, "Long-pass-2026", "长" * 30, ""))
    assert problem.status == 400 and "72 字节" in problem.reason


async def test_a_disabled_account_cannot_log_in(sessions, redis_client, settings) -> None:
    from core.models import User

    accounts = accounts_for(sessions, redis_client, settings)
    created = await accounts.create("gone1", "Gone-pass-2026", "离职", "agent")
    async with sessions() as session, session.begin():
        (await session.get(User, created.id)).active = False
    refused = await refusal_of(accounts.login("gone1", "Gone-pass-2026", ""))
    assert refused.status == 403 and "停用" in refused.reason
    # a wrong password does not reveal that the account exists but is disabled
    assert (await refusal_of(accounts.login("gone1", "wrong-wrong", ""))).reason == "用户名或密码错误。"


async def test_an_initial_password_opens_only_the_password_change(sessions, redis_client, settings) -> None:
    accounts = accounts_for(sessions, redis_client, settings)
    await accounts.create("new1", "Initial-7xq4", "新人", "agent", must_change=True)
    first = await accounts.login("new1", "Initial-7xq4", "")
    assert first.must_change
    assert await accounts.from_token(first.token) is None  # no staff page or API with it
    assert (await accounts.pending_user(first.token))[1] is True
    weak = await refusal_of(accounts.change_password(first.user.id, "Initial-7xq4", "password1", ""))
    assert weak.status == 400 and "至少" in weak.reason
    same = await refusal_of(accounts.change_password(first.user.id, "Initial-7xq4", "Initial-7xq4", ""))
    assert same.status == 400
    wrong = await refusal_of(accounts.change_password(first.user.id, "not-it", "My-own-pass-2026", ""))
    assert wrong.reason == "当前密码不正确。"
    token = await accounts.change_password(first.user.id, "Initial-7xq4", "My-own-pass-2026", "")
    assert await accounts.pending_user(first.token) is None  # the old session is over
    assert (await accounts.from_token(token)).username == "new1"
    assert not (await accounts.login("new1", "My-own-pass-2026", "")).must_change
    assert (await refusal_of(accounts.login("new1", "Initial-7xq4", ""))).status == 401


async def test_logout_ends_every_session_on_every_worker(sessions, redis_client, settings) -> None:
    # two workers: separate Accounts and Redis connections, one Redis server
    other_redis = aioredis.from_url(settings.redis_url, decode_responses=True)
    try:
        one = accounts_for(sessions, redis_client, settings)
        two = accounts_for(sessions, other_redis, settings)
        await one.create("multi1", "Multi-pass-2026", "多处", "agent")
        laptop = (await one.login("multi1", "Multi-pass-2026", "")).token
        desktop = (await two.login("multi1", "Multi-pass-2026", "")).token
        assert await two.from_token(laptop) is not None and await one.from_token(desktop) is not None
        await one.logout(laptop)
        assert await two.from_token(desktop) is None and await two.from_token(laptop) is None
    finally:
        await other_redis.aclose()


async def test_idle_and_absolute_timeouts(sessions, redis_client, settings) -> None:
    idle = accounts_for(sessions, redis_client, settings, idle_seconds=1, absolute_seconds=60)
    await idle.create("idle1", "Idle-pass-2026", "空闲", "agent")
    token = (await idle.login("idle1", "Idle-pass-2026", "")).token
    for _ in range(3):  # in use: every request renews it
        await asyncio.sleep(0.6)
        assert await idle.from_token(token) is not None
    await asyncio.sleep(1.3)
    assert await idle.from_token(token) is None
    busy = accounts_for(sessions, redis_client, settings, idle_seconds=60, absolute_seconds=1)
    token = (await busy.login("idle1", "Idle-pass-2026", "")).token
    assert await busy.from_token(token) is not None
    await asyncio.sleep(1.2)
    assert await busy.from_token(token) is None

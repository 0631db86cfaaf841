"""快捷回复: the store on each real database (who may keep which, search, validation that changes
nothing) and the variables filled in at insertion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.models import CannedResponse, User
from handoff.canned import CannedError, CannedStore, render
from hub.auth import StaffUser
from hub.seed import DEMO_CANNED

ZHANG = StaffUser(1, "agent1", "张敏", "agent")
LI = StaffUser(2, "agent2", "李强", "agent")
BOSS = StaffUser(3, "super1", "赵磊", "supervisor")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[CannedStore]:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        for user in (ZHANG, LI, BOSS):
            session.add(
                User(
                    id=user.id,
                    username=user.username,
                    display_name=user.display_name,
                    password_hash="x",
                    role=user.role,
                )
            )
    made = CannedStore(sessions)
    yield made
    await engine.dispose()


async def count(store: CannedStore) -> int:
    async with store._sessions() as session:
        return int((await session.execute(select(func.count(CannedResponse.id)))).scalar_one())


async def refused(code: str, call) -> CannedError:  # noqa: ANN001
    with pytest.raises(CannedError) as caught:
        await call
    assert caught.value.code == code
    return caught.value


async def test_shared_ones_by_supervisors_personal_ones_by_their_owner(store: CannedStore) -> None:
    shared = await store.create(BOSS, {"scope": "shared", "shortcut": "hi", "title": "问候", "text": "{姓名}，您好！"})
    mine = await store.create(ZHANG, {"scope": "personal", "shortcut": "bye", "title": "再见", "text": "再见，{姓名}"})
    # an agent may not add or change a shared one; nobody sees another agent's personal ones
    problem = await refused(
        "forbidden_shared", store.create(ZHANG, {"scope": "shared", "shortcut": "x", "title": "x", "text": "x"})
    )
    assert problem.status == 403 and problem.reason == "只有班长可以维护公共快捷回复。"
    await refused("forbidden_shared", store.update(ZHANG, shared.id, {"text": "改掉"}))
    await refused("forbidden_shared", store.delete(LI, shared.id))
    await refused("not_found", store.update(LI, mine.id, {"text": "改掉"}))
    await refused("not_found", store.get(LI, mine.id))
    assert [(v.shortcut, v.scope, v.editable) for v in await store.list(ZHANG)] == [
        ("bye", "personal", True),
        ("hi", "shared", False),
    ]
    assert [v.shortcut for v in await store.list(LI)] == ["hi"]
    assert [(v.shortcut, v.editable) for v in await store.list(BOSS)] == [("hi", True)]
    # the owner edits and deletes theirs; the supervisor edits the shared one
    assert (await store.update(ZHANG, mine.id, {"title": "结束语"})).title == "结束语"
    assert (
        await store.update(BOSS, shared.id, {"text": "{姓名}，您好！我是{坐席}。"})
    ).text == "{姓名}，您好！我是{坐席}。"
    await store.delete(ZHANG, mine.id)
    assert [v.shortcut for v in await store.list(ZHANG)] == ["hi"]


async def test_bad_input_is_refused_in_chinese_and_changes_nothing(store: CannedStore) -> None:
    good = {"scope": "personal", "shortcut": "wait", "title": "请稍候", "text": "请稍等"}
    await store.create(ZHANG, good)
    before = await count(store)
    cases = [
        ({**good, "shortcut": "has space"}, "bad_shortcut", "快捷码只能由字母、数字、汉字、下划线或短横线组成"),
        ({**good, "shortcut": "a" * 21}, "bad_shortcut", "不超过 20 个字符"),
        ({**good, "title": "  "}, "bad_title", "请填写标题"),
        ({**good, "text": ""}, "empty", "回复内容不能为空。"),
        ({**good, "text": "长" * 1001}, "too_long", "不能超过 1000 字"),
        ({**good, "shortcut": "w2", "text": "您好{手机号}"}, "bad_variable", "不支持的变量 {手机号}"),
        ({**good, "scope": "team"}, "bad_scope", "类型只能是"),
        ([1, 2], "bad_json", "请求格式错误。"),
        (good, "duplicate", "快捷码“wait”已被使用"),
    ]
    for data, code, reason in cases:
        problem = await refused(code, store.create(ZHANG, data))
        assert reason in problem.reason and problem.status in (400, 409)
    created = await store.create(ZHANG, {**good, "shortcut": "wait2"})
    await refused("duplicate", store.update(ZHANG, created.id, {"shortcut": "wait"}))
    await refused("bad_variable", store.update(ZHANG, created.id, {"text": "{编号}"}))
    assert await count(store) == before + 1
    assert (await store.get(ZHANG, created.id)).shortcut == "wait2"
    # the same shortcut is fine in another scope: 李强's own "wait"
    await store.create(LI, good)


async def test_search_by_shortcut_title_or_text_shortcut_matches_first(store: CannedStore) -> None:
    await store.seed(DEMO_CANNED)
    await store.create(ZHANG, {"shortcut": "sb", "title": "社保卡补办", "text": "社保卡丢失请先拨打12333挂失。"})
    assert [v.shortcut for v in await store.list(ZHANG, "/b")][:2] == ["bye", "sb"]  # prefix before infix
    assert [v.shortcut for v in await store.list(ZHANG, "社保")] == ["sb"]
    assert [v.shortcut for v in await store.list(ZHANG, "12333")] == ["sb"]
    assert [v.shortcut for v in await store.list(ZHANG, "稍等")] == ["wait"]
    assert await store.list(ZHANG, "不存在的词") == []
    assert len(await store.list(LI)) == len(DEMO_CANNED)
    assert await store.seed(DEMO_CANNED) == 0  # a second seed adds nothing


def test_variables_are_filled_in_with_a_polite_fallback() -> None:
    moment = datetime(2026, 1, 31, 17, 0, tzinfo=UTC)  # 2026-02-01 01:00 in China
    text = "{姓名}，您好！我是{坐席}，今天是{日期}。{未知}"
    assert render(text, citizen_name="王小明", agent_name="张敏", now=moment) == (
        "王小明，您好！我是张敏，今天是2026年2月1日。{未知}"
    )
    assert render(text, citizen_name=None, agent_name="张敏", now=moment).startswith("市民朋友，您好！")
    assert render("{姓名}", citizen_name="  ", agent_name="x") == "市民朋友"

"""Transcript search, reports, sheet versioning and the citizen word list, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from core.db import make_engine, make_sessionmaker
from core.errors import Refusal
from core.models import User
from core.models.base import utcnow
from core.models.qa import QaItem, QaVolumeDay
from qa import QaDesk, Query, flagged_citizen_messages, qa_report, search, service_report
from qa.defaults import DEFAULT_SHEET
from qa.sampling import Plan
from qa.scorer import Scorer
from qa.versions import Versions
from tests.qa.crafted import T0, Script, served, store

B = T0 - timedelta(days=21)  # Monday 2026-11-09, 10:00 in Beijing


class Person:
    def __init__(self, user_id: int, role: str) -> None:
        self.id, self.role, self.display_name = user_id, role, "x"

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def conversation(agent: int, topic: str, *, angry: bool = False, csat: int | None = None, channel: str = "web",
                 start=B) -> Script:
    return Script(
        lines=[
            (0, "citizen", "转人工"),
            (12, "agent", "您好，请问有什么可以帮您？"),
            (20, "citizen", f"我想问{topic}，电话13812345678" + ("，你们态度恶劣我要投诉" if angry else "")),
            (40, "agent", f"{topic}请到服务大厅办理。"),
            (60, "agent", "感谢您的咨询，再见。"),
        ],
        events=served(agent), csat=csat, channel=channel, start=start,
    )


@pytest.fixture
async def world(settings):
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        users = [User(username=f"a{i}", display_name=name, password_hash="x", role="agent")
                 for i, name in enumerate(("张敏", "李强"))]
        session.add_all(users)
        await session.flush()
        zhang, li = users[0].id, users[1].id
        await store(session, conversation(zhang, "社保卡补办", csat=5))
        await store(session, conversation(zhang, "居住证续签", angry=True, csat=1, channel="wechat"))
        await store(session, conversation(li, "社保卡挂失", start=B + timedelta(days=1), csat=4))
        await store(session, conversation(li, "公积金提取", start=B + timedelta(days=8)))
        await session.commit()
    versions = Versions(sessions)
    scorer = Scorer(sessions, versions, Plan(random_share=0.0), lookback_days=10_000)
    assert await scorer.sweep() == 4
    yield sessions, versions, zhang, li
    await engine.dispose()


async def test_search_by_text_agent_channel_day_and_score(world) -> None:
    sessions, _versions, zhang, li = world
    async with sessions() as session:
        async def find(**kwargs) -> list[str]:
            return sorted(r["snippet"][:7] for r in await search(session, Query(**kwargs), masked=True))

        assert await find(text="社保卡") == ["我想问社保卡挂", "我想问社保卡补"]
        assert await find(text="社保卡", agent_id=li) == ["我想问社保卡挂"]
        assert await find(text="补办社保卡") == []  # every bigram must be there: 办社 is not
        assert await find(text="公积金", day_from="2026-11-14") == ["我想问公积金提"]
        assert await find(text="公积金", day_to="2026-11-14") == []
        assert await find(channel="wechat") == [""]
        # the angry one rated 1: low CSAT costs 10
        assert len(await find(score_max=90)) == 1 and await find(score_max=89) == []
        results = await search(session, Query(text="社保卡补办"), masked=True)
        assert "13812345678" not in results[0]["snippet"] and "*******5678" in results[0]["snippet"]
        assert (await search(session, Query(text="社保卡补办"), masked=False))[0]["snippet"].count("13812345678") == 1
        with pytest.raises(Refusal):
            await search(session, Query(text="！？"), masked=True)
        if session.bind.dialect.name == "postgresql":  # the text condition is served by the GIN index
            await session.execute(text("SET enable_seqscan = off"))
            plan = "\n".join((await session.execute(text(
                "EXPLAIN SELECT id FROM qa_items WHERE string_to_array(search_text, ' ') @> ARRAY['社保','保卡']"
            ))).scalars())
            assert "ix_qa_items_search" in plan


async def test_reports_by_agent_and_period(world) -> None:
    sessions, _versions, zhang, li = world
    async with sessions() as session:
        qa = await qa_report(session, "2026-11-01", "2026-11-30", "week", "agent")
        rows = {(r["bucket"], r["name"]): r for r in qa["rows"]}
        assert set(rows) == {("2026-W46", "张敏"), ("2026-W46", "李强"), ("2026-W47", "李强")}
        assert rows[("2026-W46", "张敏")]["items"] == 2 and rows[("2026-W46", "张敏")]["avg_score"] == 95
        assert rows[("2026-W46", "张敏")]["pass_rate"] == 1.0 and rows[("2026-W46", "张敏")]["hits"] == 1
        month = await qa_report(session, "2026-10-01", "2026-11-30", "month", "group")
        assert [(r["bucket"], r["name"], r["items"]) for r in month["rows"]] == [("2026-11", "综合", 4)]
        days = await qa_report(session, "2026-11-09", "2026-11-10", "day", "none")
        assert [(r["bucket"], r["items"]) for r in days["rows"]] == [("2026-11-09", 2), ("2026-11-10", 1)]
        service = await service_report(session, "2026-11-01", "2026-11-30", "day", "none")
        assert service["by_channel"] == {"web": 3, "wechat": 1}
        assert service["by_hour"][10] == 4  # 02:00 UTC is 10:00 in Beijing
        assert [c["handoff_rate"] for c in service["containment"]] == [1.0, 1.0, 1.0]
        assert service["handoff_reasons"] == {"button": 4}
        first = service["served"][0]
        assert first["bucket"] == "2026-11-09" and first["closed"] == 2 and first["avg_wait_seconds"] == 5
        assert first["avg_first_response_seconds"] == 2 and first["avg_csat"] == 3 and first["abandoned"] == 0
        # days that are over are counted once and kept: the second report reads them, same figures
        assert await service_report(session, "2026-11-01", "2026-11-30", "day", "none") == service
        kept = (await session.execute(select(func.count(QaVolumeDay.id)))).scalar_one()
        assert kept >= 30  # a marker for each day, and the day's channel and hour counts
        with pytest.raises(Refusal):
            await qa_report(session, "2026-12-31", "2026-11-30", "day", "none")
        with pytest.raises(Refusal):
            await qa_report(session, None, None, "year", "none")


async def test_each_score_keeps_the_sheet_version_it_used(world) -> None:
    sessions, versions, zhang, li = world
    async with sessions() as session:
        item = (await session.execute(select(QaItem).order_by(QaItem.id).limit(1))).scalar_one()
    assert item.sheet_version == 1
    # a new sheet (version 2): a different weight and pass mark
    items = [{**i, "weight": 40 if i["key"] == "accuracy" else i["weight"]} for i in DEFAULT_SHEET["items"]]
    changed = {**DEFAULT_SHEET, "name": "新版", "pass_mark": 60, "items": items}
    assert (await versions.save_sheet(changed, "super1")).version == 2
    inspector = Person(zhang, "inspector")
    desk = QaDesk(sessions, versions)
    view = await desk.view(item.id, inspector)
    assert view["sheet"]["version"] == 1 and view["sheet"]["pass_mark"] == 80
    scores = {i["key"]: i["weight"] for i in view["sheet"]["items"]}
    with pytest.raises(Refusal):  # 40 points for 解答准确 is the new sheet's, not this item's
        await desk.inspect(item.id, inspector, {**scores, "accuracy": 40}, [], "")
    done = await desk.inspect(item.id, inspector, {**scores, "accuracy": 5}, [], "")
    assert done == {"item_id": item.id, "total": 85.0, "passed": True, "sheet_version": 1}
    # items scored from now on use version 2
    async with sessions() as session:
        session.add(User(username="a9", display_name="王五", password_hash="x", role="agent"))
        await session.flush()
        await store(session, conversation(li, "新问题", start=utcnow() - timedelta(minutes=20)))
        await session.commit()
    await Scorer(sessions, versions, Plan(random_share=0.0)).sweep()
    async with sessions() as session:
        newest = (await session.execute(select(QaItem).order_by(QaItem.id.desc()).limit(1))).scalar_one()
    assert newest.sheet_version == 2 and newest.auto_score == 120 and newest.passed


async def test_citizen_complaints_are_listed_for_supervisors(world) -> None:
    sessions, *_ = world
    async with sessions() as session:
        listed = await flagged_citizen_messages(session, days=10_000)
    assert len(listed) == 1
    assert sorted(listed[0]["words"]) == ["态度恶劣", "投诉"]
    assert "居住证续签" in listed[0]["text"] and "13812345678" not in listed[0]["text"]

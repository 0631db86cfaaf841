"""Sampling plans: the random share, every item under the pass mark, complaints and low CSAT, the
weekly minimum per agent, and tasks spread evenly over the inspectors with a due date."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from core.db import make_engine, make_sessionmaker
from core.models import Citizen, Conversation, User
from core.models.base import utcnow
from core.models.qa import QaItem, QaTask
from qa.sampling import Plan, assign, drawn, reason_for, weekly_minimum


def test_the_random_share_is_about_right_and_stable() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(20_000)]
    share = sum(drawn(i, 0.05) for i in ids) / len(ids)
    assert 0.045 < share < 0.055
    assert [drawn(i, 0.05) for i in ids[:500]] == [drawn(i, 0.05) for i in ids[:500]]
    assert not any(drawn(i, 0.0) for i in ids[:1000]) and all(drawn(i, 1.0) for i in ids[:1000])


def test_mandatory_reasons_come_first() -> None:
    plan = Plan(random_share=0.0)
    assert reason_for(plan, "x", passed=False, complaint=True, csat=1) == "below_pass"
    assert reason_for(plan, "x", passed=True, complaint=True, csat=5) == "complaint"
    assert reason_for(plan, "x", passed=True, complaint=False, csat=2) == "low_csat"
    assert reason_for(plan, "x", passed=True, complaint=False, csat=3) is None
    assert reason_for(Plan(random_share=1.0), "x", passed=True, complaint=False, csat=None) == "random"


async def _items(session, agents: list[int], per_agent: int, day: str) -> list[QaItem]:
    citizen = Citizen(name="市民")
    session.add(citizen)
    await session.flush()
    items = []
    for agent in agents:
        for _ in range(per_agent):
            conversation = Conversation(id=str(uuid.uuid4()), citizen_id=citizen.id, channel="web",
                                        channel_user_id="v", status="closed", closed_at=utcnow())
            session.add(conversation)
            await session.flush()
            item = QaItem(conversation_id=conversation.id, channel="web", agent_id=agent, started_at=utcnow(),
                          closed_at=utcnow(), day=day, hour=10, ruleset_version=1, sheet_version=1, auto_score=90,
                          score=90, passed=True)
            session.add(item)
            items.append(item)
    await session.flush()
    return items


async def test_tasks_spread_evenly_and_the_weekly_minimum_tops_up(settings) -> None:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            agents = []
            for name in ("a1", "a2", "a3"):
                user = User(username=name, display_name=name, password_hash="x", role="agent")
                session.add(user)
                await session.flush()
                agents.append(user.id)
            inspectors = []
            for name in ("i1", "i2", "i3"):
                user = User(username=name, display_name=name, password_hash="x", role="inspector")
                session.add(user)
                await session.flush()
                inspectors.append(user.id)
            items = await _items(session, agents, 10, "2026-11-30")  # a Monday
            plan = Plan(per_agent_week=4, due_days=3)
            # 7 tasks at once, then 3 one by one: 10 tasks over 3 inspectors is 4/3/3
            await assign(session, [(item, "random") for item in items[:7]], plan)
            for item in items[10:13]:
                await assign(session, [(item, "below_pass")], plan)
            await session.commit()
            loads = Counter((await session.execute(select(QaTask.inspector_id))).scalars())
            assert sorted(loads.values()) == [3, 3, 4] and set(loads) == set(inspectors)
            due = (await session.execute(select(QaTask.due_at, QaTask.created_at))).first()
            assert abs((due[0] - due[1]) - timedelta(days=3)) < timedelta(seconds=5)
            # agent 1 has 7 sampled, agent 2 has 3, agent 3 none: the minimum of 4 adds 1 + 4
            made = await weekly_minimum(session, plan, "2026-12-03", seed=1)
            assert made == 5
            per_agent = dict((await session.execute(
                select(QaItem.agent_id, func.count(QaTask.id)).join(QaTask, QaTask.item_id == QaItem.id)
                .group_by(QaItem.agent_id)
            )).all())
            assert per_agent == {agents[0]: 7, agents[1]: 4, agents[2]: 4}
            assert await weekly_minimum(session, plan, "2026-12-06", seed=1) == 0  # same week: nothing more
            loads = Counter((await session.execute(select(QaTask.inspector_id))).scalars())
            assert max(loads.values()) - min(loads.values()) <= 1
    finally:
        await engine.dispose()

"""QA items: every closed conversation becomes exactly one item, also when the scorer is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select, update

from core.db import make_engine, make_sessionmaker
from core.models import Conversation, User
from core.models.base import utcnow
from core.models.qa import QaItem, QaTask
from qa.sampling import Plan
from qa.scorer import Scorer
from qa.versions import Versions
from tests.qa.crafted import Script, served, store
from tests.support import ROOT


def script(agent_id: int, bad: bool = False) -> Script:
    return Script(
        lines=[
            (0, "citizen", "转人工"),
            (12, "agent", "请讲。" if bad else "您好，请问有什么可以帮您？"),
            (20, "citizen", "我的电话是13912345678，想问社保卡补办"),
            (40, "agent", "我不知道，你自己看。" if bad else "请带身份证到服务中心补办。"),
            (41, "agent", "内部：查一下", {"note": True}),
            (60, "agent", "感谢您的咨询，再见。"),
        ],
        events=served(agent_id),
    )


async def _seed(sessions, count: int, *, recent: bool = True) -> tuple[list[str], int]:
    async with sessions() as session:
        user = User(username="agent_x", display_name="张敏", password_hash="x", role="agent")
        session.add(user)
        session.add(User(username="qa_x", display_name="陈静", password_hash="x", role="inspector"))
        await session.flush()
        ids = [await store(session, script(user.id, bad=i % 2 == 0)) for i in range(count)]
        if recent:  # closed just now, inside the scorer's window
            await session.execute(update(Conversation).values(closed_at=utcnow() - timedelta(seconds=30)))
        await session.commit()
        return ids, user.id


async def test_closed_conversations_become_items_once_with_figures_and_hits(settings) -> None:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        ids, agent = await _seed(sessions, 4)
        async with sessions() as session:  # an open one is not an item yet
            await store(session, script(agent), closed=False)
            await session.commit()
        scorer = Scorer(sessions, Versions(sessions), Plan(random_share=0.0))
        other = Scorer(sessions, Versions(sessions), Plan(random_share=0.0))
        made = await asyncio.gather(scorer.sweep(), other.sweep())
        assert sum(made) == 4
        assert await scorer.sweep() == 0
        async with sessions() as session:
            items = {i.conversation_id: i for i in (await session.execute(select(QaItem))).scalars()}
            tasks = list((await session.execute(select(QaTask))).scalars())
        assert set(items) == set(ids)
        bad, good = items[ids[0]], items[ids[1]]
        assert good.agent_id == agent and good.first_response_seconds == 2 and good.handoff_reason == "button"
        assert good.wait_seconds == 5 and good.message_count == 5  # the note is not a visible line
        assert good.score == 100 and good.passed and good.hits == []
        assert {h["rule_id"] for h in bad.hits} == {"forbidden", "greeting"}
        assert bad.score == 75 and not bad.passed and bad.sheet_version == 1 and bad.ruleset_version == 1
        # every item under the pass mark is sampled into a task for the one inspector
        assert sorted(t.item_id for t in tasks) == sorted(i.id for i in items.values() if not i.passed)
        assert {t.reason for t in tasks} == {"below_pass"}
        # the phone number is not a search term
        assert "13912345678" not in good.search_text and "社保" in good.search_text.split()
    finally:
        await engine.dispose()


def test_a_killed_scorer_leaves_every_conversation_with_exactly_one_item(settings) -> None:
    count = 200
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    asyncio.run(_seed(sessions, count))
    asyncio.run(engine.dispose())

    async def items() -> tuple[int, int]:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                total = (await session.execute(select(func.count(QaItem.id)))).scalar_one()
                unique = select(func.count(func.distinct(QaItem.conversation_id)))
                distinct = (await session.execute(unique)).scalar_one()
                return total, distinct
        finally:
            await engine.dispose()

    command = [sys.executable, "-m", "qa.scorer", "--database-url", settings.database_url, "--batch", "20"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and asyncio.run(items())[0] < 40:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-way: some scored, the rest not, one perhaps in flight
    proc.wait(10)
    done_before, _ = asyncio.run(items())
    assert 40 <= done_before < count
    # a second scorer (and a third at the same time) finish the job
    again = [subprocess.Popen([*command, "--once"], cwd=ROOT, env=env, stdout=subprocess.PIPE) for _ in range(2)]
    for proc in again:
        proc.wait(120)
        assert proc.returncode == 0
    assert asyncio.run(items()) == (count, count)

"""Citizen identities and the screen-pop's masking and audit."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.models import AuditLog, User
from crm import CitizenDirectory, build_screen_pop, mask
from handoff import ConversationStore


def test_mask_keeps_only_the_tail() -> None:
    assert mask("13812345678") == "***5678"
    assert mask("530381199001011234") == "***1234"
    assert mask(None) is None


async def test_same_identity_from_two_workers_gives_one_citizen(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        directory = CitizenDirectory(make_sessionmaker(engine))
        ids = await asyncio.gather(*[directory.resolve("web_user", "visitor-x") for _ in range(8)])
        assert len(set(ids)) == 1
        assert await directory.resolve("web_user", "visitor-y") != ids[0]
    finally:
        await engine.dispose()


async def test_screen_pop_masks_for_agents_and_is_audited(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        directory = CitizenDirectory(sessions)
        conversations = ConversationStore(sessions)
        async with sessions() as session, session.begin():
            session.add(User(id=1, username="a1", display_name="张敏", password_hash="x", role="agent"))
            session.add(User(id=2, username="s1", display_name="赵磊", password_hash="x", role="supervisor"))
        citizen = await directory.resolve("web_user", "v-pop")
        await directory.update(citizen, name="王小明", phone="13812345678")
        earlier, _ = await conversations.open_for("web", "v-pop", citizen)
        await conversations.record(earlier.id, "web", "citizen", "公积金怎么提取")
        async with sessions() as session, session.begin():
            from core.models import Conversation

            (await session.get(Conversation, earlier.id)).status = "closed"
        current, _ = await conversations.open_for("web", "v-pop", citizen)

        for_agent = await build_screen_pop(directory, conversations, current.id, viewer_id=1, viewer_role="agent")
        assert for_agent["citizen"]["name"] == "王小明"
        assert for_agent["citizen"]["phone"] == "***5678"
        assert for_agent["citizen"]["visitor_id"] == "v-pop"
        assert [c["summary"] for c in for_agent["previous_conversations"]] == ["公积金怎么提取"]
        for_supervisor = await build_screen_pop(
            directory, conversations, current.id, viewer_id=2, viewer_role="supervisor"
        )
        assert for_supervisor["citizen"]["phone"] == "13812345678"
        async with sessions() as session:
            views = (await session.execute(select(AuditLog.user_id).where(AuditLog.action == "view_citizen"))).scalars()
            assert sorted(views) == [1, 2]
    finally:
        await engine.dispose()

"""The ownership state machine against a real Redis and each real database."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from sqlalchemy import select

from core.bus import EventBus
from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.events import Event, StateEvent
from core.models import Conversation, ConversationEvent, User
from core.redis_client import Keys
from crm import CitizenDirectory
from handoff import ConversationStore, Owner, Ownership


async def _setup(settings: Settings, redis_client: aioredis.Redis):
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    keys = Keys(settings.redis_prefix)
    bus = EventBus(redis_client, keys.events_channel())
    ownership = Ownership(redis_client, keys, sessions, bus)
    conversations = ConversationStore(sessions)
    citizens = CitizenDirectory(sessions)
    async with sessions() as session, session.begin():
        for number in range(1, 8):
            session.add(
                User(
                    id=number, username=f"agent{number}", display_name=f"坐席{number}", password_hash="x", role="agent"
                )
            )
    return engine, sessions, ownership, conversations, citizens, bus


async def _conversation(conversations: ConversationStore, citizens: CitizenDirectory, visitor: str) -> str:
    citizen = await citizens.resolve("web_user", visitor)
    conversation, _ = await conversations.open_for("web", visitor, citizen)
    return conversation.id


async def test_handoff_cycle_records_every_transition(settings: Settings, redis_client: aioredis.Redis) -> None:
    engine, sessions, ownership, conversations, citizens, bus = await _setup(settings, redis_client)
    received: list[Event] = []

    async def collect(event: Event) -> None:
        received.append(event)

    bus.subscribe(collect)
    await bus.start()
    try:
        conv = await _conversation(conversations, citizens, "visitor-1")
        assert (await ownership.state(conv)).owner == Owner.BOT

        queued = await ownership.apply(conv, "request_human", actor="bot", group="综合")
        assert queued.ok and (await ownership.state(conv)).owner == Owner.QUEUED
        assert await ownership.queue_position(conv, "综合") == 1

        # the bot cannot queue it twice, and nobody can close a conversation still with the bot
        assert not (await ownership.apply(conv, "request_human", actor="bot")).ok
        assigned = await ownership.apply(conv, "assign", actor="agent:7", agent_id=7)
        assert assigned.ok
        state = await ownership.state(conv)
        assert (state.owner, state.agent_id) == (Owner.AGENT, 7)
        assert await ownership.queue_position(conv, "综合") is None
        assert await ownership.agent_conversations(7) == {conv}

        closed = await ownership.apply(conv, "close", actor="agent:7", data={"disposition": "resolved"})
        assert closed.ok
        assert (await ownership.state(conv)).owner == Owner.BOT
        assert await ownership.agent_conversations(7) == set()

        async with sessions() as session:
            row = await session.get(Conversation, conv)
            assert (row.status, row.owner, row.disposition) == ("closed", "bot", "resolved")
            kinds = (
                (
                    await session.execute(
                        select(ConversationEvent.kind)
                        .where(ConversationEvent.conversation_id == conv)
                        .order_by(ConversationEvent.id)
                    )
                )
                .scalars()
                .all()
            )
        assert kinds == ["request_human", "assign", "close"]
        for _ in range(50):
            if len([e for e in received if isinstance(e, StateEvent)]) >= 3:
                break
            await asyncio.sleep(0.02)
        assert [e.transition for e in received if isinstance(e, StateEvent)] == ["request_human", "assign", "close"]
    finally:
        await bus.stop()
        await engine.dispose()


async def test_many_agents_accepting_at_once_assign_exactly_once(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    engine, _sessions, ownership, conversations, citizens, _bus = await _setup(settings, redis_client)
    try:
        convs = [await _conversation(conversations, citizens, f"v{i}") for i in range(12)]
        for conv in convs:
            assert (await ownership.apply(conv, "request_human", actor="bot", group="社保")).ok
        agents = list(range(1, 7))
        capacity = 2
        attempts = [
            ownership.apply(conv, "assign", actor=f"agent:{agent}", agent_id=agent, capacity=capacity)
            for conv in convs
            for agent in agents
        ]
        results = await asyncio.gather(*attempts)
        winners: dict[str, list[int]] = {}
        for (conv, agent), result in zip([(c, a) for c in convs for a in agents], results, strict=True):
            if result.ok:
                winners.setdefault(conv, []).append(agent)
        assert all(len(w) == 1 for w in winners.values())
        for agent in agents:
            assert len(await ownership.agent_conversations(agent)) <= capacity
        assert len(winners) == 12  # 6 agents x capacity 2 = exactly enough
    finally:
        await engine.dispose()


async def test_state_survives_a_redis_flush(settings: Settings, redis_client: aioredis.Redis) -> None:
    """Live state is rebuilt from the record, so losing Redis loses no queued citizen."""
    engine, _sessions, ownership, conversations, citizens, _bus = await _setup(settings, redis_client)
    try:
        conv = await _conversation(conversations, citizens, "visitor-flush")
        await ownership.apply(conv, "request_human", actor="bot", group="户籍")
        async for key in redis_client.scan_iter(match=f"{settings.redis_prefix}*"):
            await redis_client.delete(key)
        row = await conversations.get(conv)
        assert row is not None and row.owner == "queued"
        await ownership.load(row.id, row.owner, row.agent_id, row.group)
        assert (await ownership.state(conv)).owner == Owner.QUEUED
        assert await ownership.queue_position(conv, "户籍") == 1
    finally:
        await engine.dispose()

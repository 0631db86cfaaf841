"""Auto-assignment across two real hub worker processes, over the real sockets: 200 citizens
asking for a person at once, 20 agents, each conversation assigned exactly once and no agent
past capacity; presence, transfer with a memo, close with CSAT over the console socket."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade
from core.models import Conversation, ConversationEvent, Message, User
from hub.auth import hash_password
from tests.support import (
    ROOT,
    TEST_REDIS_URL,
    AgentClient,
    ChatClient,
    create_postgres_database,
    drop_postgres_database,
    event_kinds,
    start_hubs,
    unique_prefix,
)

AGENTS = 20
CITIZENS = 200
CAPACITY = 5
LOG_DIR = ROOT / "var" / "test-logs"


@dataclass
class Workers:
    urls: list[str]
    database_url: str
    prefix: str


async def _seed_agents(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        password = hash_password("pass")
        async with sessions() as session, session.begin():
            for number in range(1, AGENTS + 1):
                session.add(
                    User(
                        username=f"a{number:02d}",
                        display_name=f"坐席{number:02d}",
                        password_hash=password,
                        role="agent",
                    )
                )
            session.add(User(username="boss", display_name="班长", password_hash=password, role="supervisor"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def workers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    tmp: Path = tmp_path_factory.mktemp("handoff-workers")
    pg_url = None
    if request.param == "postgresql":
        pg_url, why = create_postgres_database()
        if pg_url is None:
            pytest.skip(why)
    database_url = pg_url or f"sqlite:///{tmp / 'hub.db'}"
    upgrade(database_url)
    asyncio.run(_seed_agents(database_url))
    prefix = unique_prefix()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "RASA_URL": "http://127.0.0.1:9",
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
    }
    hubs = None
    try:
        hubs = start_hubs(
            env,
            2,
            LOG_DIR,
            name=f"handoff-hub-{request.param}-",
            config={"handoff": {"auto_assign": True, "agent_capacity": CAPACITY}},
            config_dir=tmp,
        )
        yield Workers(hubs.urls, database_url, prefix)
    finally:
        if hubs is not None:
            hubs.stop()
        asyncio.run(_drop_keys(prefix))
        if pg_url:
            drop_postgres_database(pg_url)


async def _drop_keys(prefix: str) -> None:
    client = aioredis.from_url(TEST_REDIS_URL, decode_responses=True)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


async def _until(check, limit: float = 60.0) -> None:
    """Wait for a condition the system reaches on its own (not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + limit
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the system did not settle")
        await asyncio.sleep(0.2)


async def _frame(client, kind: str, where=lambda f: True, limit: float = 30.0) -> dict:
    """A frame of `kind` already received (frames may cross) or the next one."""
    for frame in client.frames:
        if frame["type"] == kind and where(frame):
            return frame
    return await client.next_frame(kind, limit, where=where)


async def _loads(redis: aioredis.Redis, prefix: str, agent_ids: list[int]) -> dict[int, set[str]]:
    return {a: set(await redis.smembers(f"{prefix}agent:{a}:convs")) for a in agent_ids}


async def test_console_presence_transfer_close_and_csat_over_sockets(workers: Workers) -> None:
    """Runs first on a fresh system: only the agents connected here can be assigned."""
    first, second = workers.urls
    async with (
        AgentClient(first, "a01", "pass") as sender,
        AgentClient(second, "a02", "pass") as receiver,
        AgentClient(second, "boss", "pass") as boss,
    ):
        for agent in (sender, receiver):
            await agent.next_frame("presence")
        board = await boss.next_frame("board")
        assert any(q["group"] == "综合" for q in board["queues"])
        # a02 away: the new conversation can only go to a01
        await receiver.send({"type": "presence", "status": "away"})
        assert (await receiver.next_frame("presence", where=lambda f: f["status"] == "away"))["status"] == "away"
        await receiver.send({"type": "presence", "status": "sleeping"})
        assert (await receiver.next_frame("error"))["code"] == "bad_status"

        async with ChatClient(first) as citizen:
            await citizen.send_frame({"type": "human"})
            conv = citizen.conversation_id
            assigned = await _frame(sender, "assigned", lambda f: f["conversation_id"] == conv)
            assert assigned["auto"] is True and assigned["memo"] is None
            state = await _frame(citizen, "state", lambda f: f["owner"] == "agent")
            assert state["agent_name"] == "坐席01"

            await receiver.send({"type": "presence", "status": "online"})
            await receiver.next_frame("presence", where=lambda f: f["status"] == "online")
            await sender.send({"type": "agents"})
            roster = await sender.next_frame("agents")
            assert any(a["username"] == "a02" and a["status"] == "online" for a in roster["items"])
            memo = "市民咨询社保转移，已核实身份"
            await sender.send({"type": "transfer", "conversation_id": conv, "to_agent": "a02", "memo": memo})
            await sender.next_frame("transferred")
            await _frame(sender, "closed", lambda f: f["conversation_id"] == conv)
            handed = await _frame(receiver, "assigned", lambda f: f["conversation_id"] == conv)
            assert handed["memo"] == {"text": memo, "from": "坐席01"} and handed["transition"] == "transfer"
            await _frame(citizen, "state", lambda f: f.get("agent_name") == "坐席02")

            # the supervisor watches and whispers: the agent sees it, the citizen never does
            await sender.send({"type": "watch", "conversation_id": conv})
            assert (await _frame(sender, "error"))["code"] == "forbidden"
            await boss.send({"type": "watch", "conversation_id": conv})
            watching = await _frame(boss, "watching", lambda f: f["conversation_id"] == conv)
            assert any(m["sender"] == "citizen" or m["sender"] == "system" for m in watching["transcript"])
            await boss.send({"type": "whisper", "conversation_id": conv, "text": "请先核实身份"})
            whisper = await _frame(receiver, "message", lambda f: f["message"]["meta"].get("whisper"))
            assert whisper["message"]["text"] == "请先核实身份"
            await _frame(boss, "message", lambda f: f["message"]["meta"].get("whisper"))

            await receiver.send(
                {"type": "close", "conversation_id": conv, "disposition": "resolved", "summary": "已说明流程"}
            )
            csat = await _frame(citizen, "message", lambda f: f["message"]["meta"].get("csat"))
            assert csat["message"]["meta"]["conversation_id"] == conv
            assert not [f for f in citizen.frames if f["type"] == "message" and f["message"]["meta"].get("whisper")]
            await boss.send({"type": "board"})
            board = await boss.next_frame("board")
            assert {"queues", "agents"} <= set(board)
    engine = make_engine(workers.database_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(Conversation).where(Conversation.id == conv))).one()
            system_lines = (
                await conn.execute(
                    select(func.count(Message.id)).where(Message.conversation_id == conv, Message.sender == "system")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert await event_kinds(workers.database_url, conv) == ["request_human", "assign", "transfer", "close"]
    assert (row.disposition, row.summary) == ("resolved", "已说明流程")
    assert system_lines >= 4  # queued, assigned, transferred, closed, CSAT question


async def test_200_handoffs_on_two_workers_assign_each_once_within_capacity(workers: Workers) -> None:
    redis = aioredis.from_url(TEST_REDIS_URL, decode_responses=True)
    engine = make_engine(workers.database_url)
    agents = [AgentClient(workers.urls[n % 2], f"a{n:02d}", "pass") for n in range(1, AGENTS + 1)]
    citizens = [ChatClient(workers.urls[n % 2]) for n in range(CITIZENS)]
    try:
        await asyncio.gather(*(agent.__aenter__() for agent in agents))
        await asyncio.gather(*(agent.next_frame("presence") for agent in agents))
        async with engine.connect() as conn:
            ids = dict((await conn.execute(select(User.username, User.id))).all())
        agent_ids = [ids[f"a{n:02d}"] for n in range(1, AGENTS + 1)]

        await asyncio.gather(*(citizen.__aenter__() for citizen in citizens))
        # everyone presses 转人工 at the same moment, half on each worker
        await asyncio.gather(*(citizen.send_frame({"type": "human"}) for citizen in citizens))
        await asyncio.gather(
            *(
                citizen.next_frame("state", 60, where=lambda f: f["owner"] in ("queued", "agent"))
                for citizen in citizens
            )
        )
        slots = AGENTS * CAPACITY

        async def settled() -> bool:
            return sum(len(c) for c in (await _loads(redis, workers.prefix, agent_ids)).values()) >= slots

        await _until(settled)

        async def recorded() -> bool:  # the database rows follow the Redis compare-and-set
            async with engine.connect() as conn:
                count = await conn.execute(
                    select(func.count(ConversationEvent.id)).where(
                        ConversationEvent.kind == "assign", ConversationEvent.conversation_id.in_(mine)
                    )
                )
                return count.scalar_one() >= slots

        mine = {c.conversation_id for c in citizens}
        await _until(recorded)
        loads = await _loads(redis, workers.prefix, agent_ids)
        assert all(len(convs) <= CAPACITY for convs in loads.values()), {a: len(c) for a, c in loads.items()}
        owned = [conv for convs in loads.values() for conv in convs]
        assert len(owned) == len(set(owned)) == slots  # nobody holds a conversation twice
        waiting = await redis.zrange(f"{workers.prefix}queue:综合", 0, -1)
        assert len(waiting) == CITIZENS - slots and not set(waiting) & set(owned)
        assert set(owned) | set(waiting) == mine

        async with engine.connect() as conn:
            assigns = Counter(
                (
                    await conn.execute(
                        select(ConversationEvent.conversation_id).where(
                            ConversationEvent.kind == "assign", ConversationEvent.conversation_id.in_(mine)
                        )
                    )
                ).scalars()
            )
            rows = dict(
                (
                    await conn.execute(select(Conversation.id, Conversation.agent_id).where(Conversation.id.in_(mine)))
                ).all()
            )
        assert set(assigns) == set(owned) and set(assigns.values()) == {1}  # exactly once each
        for agent_id, convs in loads.items():
            assert all(rows[conv] == agent_id for conv in convs)

        # every agent got a screen-pop for exactly their conversations, on whichever worker holds their socket
        async def popped(agent: AgentClient, want: set[str]) -> bool:
            seen = {f["conversation_id"] for f in agent.frames if f["type"] == "assigned"}
            while seen != want:
                frame = await agent.next_frame("assigned", 30)
                seen.add(frame["conversation_id"])
                assert frame["conversation_id"] in want
            return True

        await asyncio.gather(*(popped(agent, loads[agent_ids[i]]) for i, agent in enumerate(agents)))

        # a freed slot takes the next conversation from the front of the queue
        first_waiting = waiting[0]
        agent = agents[0]
        victim = sorted(loads[agent_ids[0]])[0]
        await agent.send({"type": "close", "conversation_id": victim, "disposition": "resolved", "summary": "已解答"})

        async def refilled() -> bool:
            return first_waiting in await redis.smembers(f"{workers.prefix}agent:{agent_ids[0]}:convs")

        await _until(refilled)
        assert len(await redis.smembers(f"{workers.prefix}agent:{agent_ids[0]}:convs")) == CAPACITY
    finally:
        for client in [*citizens, *agents]:
            if client._ws is not None:
                await client.__aexit__(None, None, None)
        await redis.aclose()
        await engine.dispose()


async def test_a_watch_survives_a_switch_of_worker_and_a_waiting_conversation_is_taken_over(
    workers: Workers,
) -> None:
    """The supervisor watches a waiting citizen from worker 1, their page reconnects to worker 2 and
    keeps watching without asking again; then they take the conversation over from the queue."""
    first, second = workers.urls
    async with ChatClient(second) as citizen:
        await citizen.send_frame({"type": "human"})
        await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        conv = citizen.conversation_id
        async with AgentClient(first, "boss", "pass") as boss:
            await boss.next_frame("board")
            await boss.send({"type": "watch", "conversation_id": conv})
            await _frame(boss, "watching", lambda f: f["conversation_id"] == conv)
        async with AgentClient(second, "boss", "pass") as boss:
            resumed = await boss.next_frame("watching", where=lambda f: f["conversation_id"] == conv)
            assert resumed["group"] == "综合"
            await citizen.say("我还在等，请问要多久")
            heard = await boss.next_frame("message", where=lambda f: f.get("watching"))
            assert heard["message"]["text"] == "我还在等，请问要多久"

            await boss.send({"type": "take_over", "conversation_id": conv})
            taken = await boss.next_frame("taken_over")
            assert taken["conversation_id"] == conv and taken["over_capacity"] is False
            assert taken["capacity"] == CAPACITY
            await _frame(boss, "assigned", lambda f: f["conversation_id"] == conv)
            state = await citizen.next_frame("state", where=lambda f: f["owner"] == "agent")
            assert state["agent_name"] == "班长"
            await boss.send({"type": "unwatch", "conversation_id": conv})
            await boss.send({"type": "ping"})
            await boss.next_frame("pong")  # the unwatch was handled
        async with AgentClient(first, "boss", "pass") as boss:
            await boss.next_frame("board")
            await boss.send({"type": "ping"})
            await boss.next_frame("pong")
            assert not [f for f in boss.frames if f["type"] == "watching"]  # unwatched stays unwatched
    assert (await event_kinds(workers.database_url, conv))[-1] == "assign"

"""A ticket posts its reply only into its own citizen's conversation (issue #12, Security 10)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select, update

from core.db import make_engine
from core.models import Conversation, Ticket
from tests.conftest import RunningSystem
from tests.support import ChatClient, send_csrf_token


async def citizen_of(database_url: str, conversation_id: str) -> int:
    engine = make_engine(database_url)
    try:
        for _ in range(50):  # the transcript writer commits the conversation row shortly after the ack
            async with engine.connect() as conn:
                found = (await conn.execute(
                    select(Conversation.citizen_id).where(Conversation.id == conversation_id))).scalar_one_or_none()
            if found is not None:
                return int(found)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no conversation row for {conversation_id}")
    finally:
        await engine.dispose()


async def point_ticket_at(database_url: str, ticket_id: int, conversation_id: str) -> None:
    """What an old row (written before this check) or a direct database edit could hold."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(conversation_id=conversation_id))
    finally:
        await engine.dispose()


async def test_a_ticket_cannot_name_or_reply_into_another_citizens_conversation(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as mine, ChatClient(system.hub_url) as other:
        await mine.say("我想咨询居住证")
        await other.say("我想咨询公积金")
        my_citizen = await citizen_of(system.database_url, mine.conversation_id)
        await citizen_of(system.database_url, other.conversation_id)
        async with httpx.AsyncClient(base_url=system.hub_url, timeout=30) as agent:
            login = await agent.post("/api/login", json={"username": "agent1", "password": "agent1pass"})
            send_csrf_token(agent, login)
            ticket = {"citizen_id": my_citizen, "title": "居住证进度", "body": "请回复办理进度"}
            refused = await agent.post("/api/crm/tickets", json={**ticket, "conversation_id": other.conversation_id})
            assert refused.status_code == 400 and refused.json()["reason"] == "该会话不属于此工单的客户。"
            assert refused.json()["field"] == "conversation_id"

            created = await agent.post("/api/crm/tickets", json={**ticket, "conversation_id": mine.conversation_id})
            assert created.status_code == 201, created.text
            ticket_id = created.json()["id"]
            answered = await agent.patch(f"/api/crm/tickets/{ticket_id}",
                                         json={"reply": "已受理，三个工作日内办结。", "notify_citizen": True})
            assert answered.status_code == 200 and answered.json()["delivered"] is True
            got = await mine.reply_from("agent")
            assert "已受理，三个工作日内办结。" in got["text"]

            # a row that points elsewhere (written before the check existed) still cannot post there
            await point_ticket_at(system.database_url, ticket_id, other.conversation_id)
            again = await agent.patch(f"/api/crm/tickets/{ticket_id}",
                                      json={"reply": "这条不应发给别人。", "notify_citizen": True})
            assert again.status_code == 200 and again.json()["delivered"] is False
        await asyncio.sleep(1)
        assert not [f for f in other.frames if f["type"] == "message" and "不应发给别人" in f["message"]["text"]]
        while True:  # nothing pending on the other citizen's socket either
            try:
                frame = await other.next_frame("message", timeout=0.5)
            except TimeoutError:
                break
            assert "不应发给别人" not in frame["message"]["text"]

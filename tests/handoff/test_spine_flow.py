"""The spine end to end over the real sockets: a trained Rasa model, two hub workers,
the KB, the queue, an agent, and back to the bot."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from core.db import make_engine
from core.models import Message
from tests.conftest import RunningSystem
from tests.support import AgentClient, ChatClient, event_kinds


async def _count_messages(database_url: str, conversation_id: str) -> int:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(func.count(Message.id)).where(Message.conversation_id == conversation_id)
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def test_a_paraphrase_is_answered_from_the_kb(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen:
        reply = await citizen.ask("居住证每年都要去签一次吗")
    assert reply["sender"] == "bot"
    assert reply["meta"]["kb_entry_id"] == "D002"
    assert "签注" in reply["text"]


async def test_an_unrelated_question_gets_a_polite_decline_not_a_wrong_answer(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen:
        reply = await citizen.ask("量子纠缠的原理是什么")
    assert reply["sender"] == "bot"
    assert "kb_entry_id" not in reply["meta"]
    assert "人工" in reply["text"]


async def test_two_fallbacks_in_a_row_put_the_citizen_in_the_queue(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen:
        first = await citizen.ask("火星上的土豆好吃吗")
        assert first["meta"].get("declined") is True
        await citizen.say("宇宙的尽头是什么颜色")
        state = await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        assert state["queue_position"] >= 1


async def test_handoff_to_an_agent_and_back_to_the_bot(system: RunningSystem) -> None:
    """Citizen on worker 1, agent on worker 0: live events cross workers through Redis."""
    citizen_url, agent_url = system.hub_urls[1], system.hub_urls[0]
    async with ChatClient(citizen_url) as citizen, AgentClient(agent_url, "agent2", "agent2pass") as agent:
        await citizen.ask("公积金怎么提取")
        await citizen.say("我要转人工")
        queued = await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        assert queued["queue_position"] >= 1
        conv = citizen.conversation_id
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))

        await agent.send({"type": "accept", "conversation_id": conv})
        assigned = await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        senders = [m["sender"] for m in assigned["transcript"]]
        assert "bot" in senders and "citizen" in senders  # the bot's part of the transcript too
        # the agent sees the citizen's public id, never the chat credential (tests/security/test_visitor_secret.py)
        from core.config import load_settings
        from core.secrets import public_visitor_id

        shown = assigned["screen_pop"]["citizen"]["visitor_id"]
        assert shown == public_visitor_id(load_settings().secret_key, citizen.visitor_id) != citizen.visitor_id
        assert assigned["screen_pop"]["citizen"]["channel"] == "web"
        state = await citizen.next_frame("state", where=lambda f: f["owner"] == "agent")
        assert state["agent_name"] == "李强"

        await agent.send({"type": "reply", "conversation_id": conv, "text": "您好，我来帮您查公积金", "client_id": "x"})
        reply = await citizen.reply_from("agent")
        assert reply["text"] == "您好，我来帮您查公积金" and reply["sender_name"] == "李强"

        # while the agent owns the conversation the bot stays silent
        await citizen.say("好的谢谢，我的账号是多少")
        forwarded = await agent.next_frame("message", where=lambda f: f["message"]["sender"] == "citizen")
        assert forwarded["message"]["text"] == "好的谢谢，我的账号是多少"
        await asyncio.sleep(1.5)
        assert not [f for f in citizen.frames[-5:] if f["type"] == "message" and f["message"]["sender"] == "bot"]

        await agent.send({"type": "close", "conversation_id": conv})
        await citizen.next_frame("state", where=lambda f: f["owner"] == "bot")
        # the closing lines (the last one asks for a rating) come before the next question
        await citizen.next_frame("message", where=lambda f: bool(f["message"]["meta"].get("csat")))
        answer = await citizen.ask("护照丢了怎么办")
        assert answer["sender"] == "bot" and answer["meta"].get("kb_entry_id")

    assert await event_kinds(system.database_url, conv) == ["request_human", "assign", "close"]


async def test_reload_resumes_the_same_conversation_with_its_history(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as first:
        await first.ask("营业执照怎么办理")
        visitor, conversation = first.visitor_id, first.conversation_id
    async with ChatClient(system.hub_urls[1], visitor_id=visitor) as again:
        assert again.conversation_id == conversation
        texts = [m["text"] for m in again.history]
        assert "营业执照怎么办理" in texts
        assert any(m["sender"] == "bot" for m in again.history)


async def test_bad_frames_get_errors_and_store_nothing(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen:
        await citizen.ask("你好")
        before = await _count_messages(system.database_url, citizen.conversation_id)
        for bad in [
            "{not json",
            '{"type": "message", "text": "hi"}',
            '{"type": "message", "text": "' + "长" * 1200 + '", "client_id": "c"}',
        ]:
            await citizen.send_frame(bad)
            error = await citizen.next_frame("error")
            assert error["reason"]
        assert await _count_messages(system.database_url, citizen.conversation_id) == before


async def test_a_message_is_stored_before_it_is_acknowledged(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen:
        stored = await citizen.say("不动产登记要多久")
        engine = make_engine(system.database_url)
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(select(Message.text).where(Message.id == stored["id"]))).scalar_one()
        finally:
            await engine.dispose()
        assert row == "不动产登记要多久"


async def test_a_citizen_rates_the_agent_after_close_and_leaves_a_message(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen, AgentClient(system.hub_url, "agent1", "agent1pass") as agent:
        await citizen.say("我要转人工")
        conv = citizen.conversation_id
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        await agent.send({"type": "close", "conversation_id": conv, "disposition": "resolved", "summary": "已解答"})
        question = await citizen.next_frame("message", where=lambda f: f["message"]["meta"].get("csat"))
        assert question["message"]["meta"]["conversation_id"] == conv

        await citizen.send_frame({"type": "csat", "conversation_id": conv, "score": 9})
        refused = await citizen.next_frame("error")
        assert refused["code"] == "bad_score" and refused["reason"]
        await citizen.send_frame({"type": "csat", "conversation_id": conv, "score": 5, "comment": "很满意"})
        done = await citizen.next_frame("done")
        assert done["request"] == "csat"

        await citizen.send_frame({"type": "leave_message", "text": "请帮我查一下营业执照审批进度，电话13800000000"})
        left = await citizen.next_frame("done")
        assert left["request"] == "leave_message" and left.get("ticket_id")


async def test_an_unsure_bot_asks_back_and_answers_the_citizens_pick(system: RunningSystem) -> None:
    """#18.4: "您是想问：" with the likely entries as quick replies; the pick is answered and kept
    as a labelled pair for the editors."""
    from core.models import ClarifyPick

    async with ChatClient(system.hub_url) as citizen:
        offer = await citizen.ask("养老保险怎么弄")
        assert offer["sender"] == "bot" and offer["text"].startswith("您是想问")
        assert "kb_entry_id" not in offer["meta"]
        buttons = offer["meta"]["buttons"]
        assert 3 <= len(buttons) <= 4 and buttons[-1]["title"] == "都不是（转人工）"
        assert all("养老保险" in b["title"] for b in buttons[:-1])
        chosen = buttons[1]
        await citizen.send_frame({"type": "message", "text": chosen["payload"], "title": chosen["title"],
                                  "client_id": "pick-1"})
        answer = await citizen.reply_from("bot")
        assert answer["meta"]["kb_entry_id"] == offer["meta"]["clarify"][1]
        assert answer["meta"]["kb_question"] == chosen["title"]
        conversation_id = citizen.conversation_id

    engine = make_engine(system.database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ClarifyPick).where(ClarifyPick.conversation_id == conversation_id))).all()
    finally:
        await engine.dispose()
    assert [(r.question, r.picked_entry_id) for r in rows] == [("养老保险怎么弄", offer["meta"]["clarify"][1])]


async def test_none_of_these_hands_the_citizen_to_a_person(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen:
        offer = await citizen.ask("养老保险怎么弄")
        assert offer["text"].startswith("您是想问")
        await citizen.say(offer["meta"]["buttons"][-1]["payload"])
        state = await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        assert state["queue_position"] >= 1

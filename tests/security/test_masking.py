"""Citizens' phone and ID numbers are masked for staff without the right (issue #12, Security 7 and
#13.26): in the agent console, the staff API, the 未解决问题 list; and, when configured, before they
are stored at all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.masking import mask_text
from core.models import Citizen, Conversation, Message
from kb_sync.unanswered import collect
from tests.channels.telegram_fake import ChannelHub, FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.support import AgentClient, ChatClient, send_csrf_token

PHONE, ID_NUMBER = "13812345678", "530381199001011234"
TYPED = f"我的手机号{PHONE}，身份证{ID_NUMBER}，请转人工"


def test_mask_text_finds_numbers_in_chinese_text_and_leaves_ids_alone() -> None:
    assert mask_text(TYPED) == "我的手机号***5678，身份证***1234，请转人工"
    assert mask_text("电话：138-1234-5678。+86 139 8765 4321") == "电话：***5678。***4321"
    assert mask_text("老身份证530381900101123") == "老身份证***1123"
    for kept in ("会话 3f2a-13812345678a", "订单号2026120113812345678", "热线 0873-1234567", "12345"):
        assert mask_text(kept) == kept


@pytest.fixture(scope="module")
def rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def hub(rasa: FakeRasa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    started = start_channel_hubs(tmp_path_factory.mktemp("mask"), {"RASA_URL": rasa.url}, log_name="masking")
    try:
        yield started
    finally:
        stop_channel_hubs(started)


async def stored_texts(database_url: str, conversation_id: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Message.text).where(Message.conversation_id == conversation_id))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def test_agents_see_masked_numbers_in_the_console_and_the_api_supervisors_in_full(hub: ChannelHub) -> None:
    url = hub.urls[0]
    async with ChatClient(url) as citizen, AgentClient(url, "agent1", "agent1pass") as agent:
        conv = citizen.conversation_id
        await citizen.say(TYPED)
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        assigned = await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        shown = [m["text"] for m in assigned["transcript"] if m["sender"] == "citizen"]
        assert mask_text(TYPED) in shown
        await citizen.say(f"再说一遍：{PHONE}")
        live = await agent.next_frame("message", where=lambda f: "再说一遍" in f["message"]["text"])
        assert live["message"]["text"] == "再说一遍：***5678"
        assert PHONE not in str(agent.frames) and ID_NUMBER not in str(agent.frames)
        citizen_id = assigned["screen_pop"]["citizen"]["id"]

        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            send_csrf_token(http, await http.post("/api/login", json={"username": "agent1", "password": "agent1pass"}))
            created = await http.post("/api/crm/tickets", json={
                "citizen_id": citizen_id, "conversation_id": conv, "title": "回电", "body": f"市民留的电话 {PHONE}"})
            assert created.status_code == 201, created.text
            ticket = await http.get(f"/api/crm/tickets/{created.json()['id']}")
            assert "***5678" in ticket.text and PHONE not in ticket.text
        async with httpx.AsyncClient(base_url=url, timeout=30) as boss:
            await boss.post("/api/login", json={"username": "super1", "password": "super1pass"})
            full = await boss.get(f"/api/crm/tickets/{created.json()['id']}")
            assert PHONE in full.text  # 班长 holds the right
        await agent.send({"type": "close", "conversation_id": conv})
    assert TYPED in await stored_texts(hub.database_url, conv)  # masked on the way out, kept as typed


@pytest.fixture(scope="module")
def redacting(rasa: FakeRasa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    env = {"RASA_URL": rasa.url, "ZWKF_PRIVACY__REDACT_AT_INGEST": "true"}
    started = start_channel_hubs(tmp_path_factory.mktemp("redact"), env, log_name="redact")
    try:
        yield started
    finally:
        stop_channel_hubs(started)


async def test_redact_at_ingest_keeps_no_copy(redacting: ChannelHub) -> None:
    async with ChatClient(redacting.urls[0]) as citizen:
        stored = await citizen.say(f"电话{PHONE}")
        assert stored["text"] == "电话***5678"
        echoed = await citizen.reply_from("bot")
        assert PHONE not in echoed["text"]  # the bot never got it either
    texts = await stored_texts(redacting.database_url, citizen.conversation_id)
    assert texts and not [t for t in texts if PHONE in t]


async def test_the_unanswered_list_masks_what_citizens_typed(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            citizen = Citizen(name=None)
            session.add(citizen)
            await session.flush()
            conversation_id = str(uuid.uuid4())
            session.add(Conversation(id=conversation_id, citizen_id=citizen.id, channel="web", channel_user_id="v"))
            await session.flush()
            for sender, text, meta in (("citizen", f"我的身份证{ID_NUMBER}丢了电话{PHONE}", {}),
                                       ("bot", "抱歉", {"declined": True})):
                session.add(Message(conversation_id=conversation_id, channel="web", sender=sender, text=text,
                                    meta=meta))
                await session.flush()
        asked = await collect(sessions)
        assert [a.question for a in asked] == ["我的身份证***1234丢了电话***5678"]
    finally:
        await engine.dispose()

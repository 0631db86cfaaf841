"""The Telegram channel over real HTTP, without the internet: two hub worker processes with
the channel enabled and pointed (python-telegram-bot's `base_url`) at the fake Bot API, a
fake Rasa, real Redis and a real (SQLite) database with the demo accounts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from channels.telegram import TelegramConfig, parse_update
from channels.telegram.__main__ import set_webhook
from core.db import make_engine
from core.models import Citizen, Conversation, Message
from tests.channels.telegram_fake import (
    SECRET,
    TOKEN,
    ChannelHub,
    FakeRasa,
    FakeTelegram,
    button_update,
    citizen,
    next_update_id,
    photo_update,
    start_channel_hubs,
    sticker_like_update,
    stop_channel_hubs,
    text_update,
)
from tests.support import AgentClient

WEBHOOK = "/telegram/webhook"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
_users = iter(range(7_000_000_000 + int(time.time()) % 100_000 * 1000, 8_000_000_000))


@dataclass
class TelegramSystem:
    hubs: ChannelHub
    telegram: FakeTelegram
    rasa: FakeRasa


@pytest.fixture(scope="module")
def tg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TelegramSystem]:
    telegram, rasa = FakeTelegram().start(), FakeRasa().start()
    env = {
        "RASA_URL": rasa.url,
        "ZWKF_TELEGRAM__ENABLED": "true",
        "ZWKF_TELEGRAM__TOKEN": TOKEN,
        "ZWKF_TELEGRAM__SECRET_TOKEN": SECRET,
        "ZWKF_TELEGRAM__API_BASE_URL": telegram.base_url,
        "ZWKF_HANDOFF__WORKING_HOURS__ENABLED": "false",
    }
    hubs = start_channel_hubs(tmp_path_factory.mktemp("telegram"), env, workers=2, log_name="telegram")
    try:
        yield TelegramSystem(hubs, telegram, rasa)
    finally:
        stop_channel_hubs(hubs)
        telegram.stop()
        rasa.stop()


def new_user():
    return citizen(next(_users))


async def post(url: str, update: dict[str, Any] | bytes, secret: str | None = SECRET) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[HEADER] = secret
    async with httpx.AsyncClient(timeout=30) as client:
        if isinstance(update, bytes):
            return await client.post(url + WEBHOOK, content=update, headers=headers)
        return await client.post(url + WEBHOOK, json=update, headers=headers)


async def rows_for(tg: TelegramSystem, chat_id: int) -> list[Message]:
    engine = make_engine(tg.hubs.database_url)
    try:
        async with engine.connect() as conn:
            statement = (
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.channel == "telegram", Conversation.channel_user_id == str(chat_id))
                .order_by(Message.id)
            )
            return list((await conn.execute(statement)).all())
    finally:
        await engine.dispose()


async def wait_for(predicate, within: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


# ------------------------------------------------------------------------------ pure parsing


def test_updates_built_with_the_library_parse() -> None:
    user = new_user()
    parsed = parse_update(text_update(user, "居住证怎么办理"))
    assert (parsed.kind, parsed.chat_id, parsed.text) == ("text", str(user.id), "居住证怎么办理")
    assert parse_update(text_update(user, "/start")).kind == "start"
    photo = parse_update(photo_update(user))
    assert photo.kind == "image" and photo.text == "[图片]"
    assert photo.meta["telegram"]["file_id"].endswith("-x")  # the largest size
    assert parse_update(sticker_like_update(user)).kind == "unsupported"
    with pytest.raises(ValueError):
        parse_update({"message": {}})


def test_config_refuses_an_enabled_channel_without_secret() -> None:
    with pytest.raises(ValueError):
        TelegramConfig.from_tree({"enabled": True, "token": TOKEN, "secret_token": ""})
    with pytest.raises(ValueError):
        TelegramConfig.from_tree({"enabled": True, "token": TOKEN, "secret_token": "has spaces"})
    assert not TelegramConfig.from_tree({}).enabled


# ------------------------------------------------------------------------------ over HTTP


async def test_wrong_or_missing_secret_is_refused_and_nothing_is_stored(tg: TelegramSystem) -> None:
    user = new_user()
    for secret in (None, "", "wrong-secret", SECRET + "x"):
        reply = await post(tg.hubs.url, text_update(user, "你好"), secret=secret)
        assert reply.status_code == 403, reply.text
        assert "密钥" in reply.json()["reason"]
    await asyncio.sleep(0.5)
    assert await rows_for(tg, user.id) == []
    assert tg.telegram.sent_to(user.id) == []


async def test_garbage_body_is_a_400(tg: TelegramSystem) -> None:
    assert (await post(tg.hubs.url, b"{not json")).status_code == 400
    assert (await post(tg.hubs.url, b'{"message": {"text": "hi"}}')).status_code == 400


async def test_text_gets_the_bot_reply_through_send_message(tg: TelegramSystem) -> None:
    user = new_user()
    reply = await post(tg.hubs.url, text_update(user, "居住证怎么办理"))
    assert reply.status_code == 200 and reply.json()["ok"] is True
    sent = await wait_for(lambda: tg.telegram.sent_to(user.id))
    assert sent == ["收到：居住证怎么办理"]
    rows = await rows_for(tg, user.id)
    assert [(r.sender, r.text) for r in rows] == [("citizen", "居住证怎么办理"), ("bot", "收到：居住证怎么办理")]
    assert rows[0].meta["kind"] == "text" and rows[0].channel_message_id.startswith("update:")
    # the citizen's name from Telegram reaches the citizen record (the agent's 客户信息)
    engine = make_engine(tg.hubs.database_url)
    try:
        async with engine.connect() as conn:
            conversation = (
                await conn.execute(select(Conversation).where(Conversation.channel_user_id == str(user.id)))
            ).first()
            name = await wait_for(lambda: _citizen_name(conn, conversation.citizen_id), within=5)
    finally:
        await engine.dispose()
    assert name == "Wei Zhang"


async def _citizen_name(conn: Any, citizen_id: int) -> str | None:
    row = (await conn.execute(select(Citizen.name).where(Citizen.id == citizen_id))).first()
    await conn.commit()
    return row[0] if row else None


async def test_photo_is_stored_with_its_file_id(tg: TelegramSystem) -> None:
    user = new_user()
    update = photo_update(user)
    assert (await post(tg.hubs.urls[1], update)).status_code == 200
    rows = await wait_for(lambda: _rows_with(tg, user.id, 2))
    citizen_row = rows[0]
    assert citizen_row.sender == "citizen" and citizen_row.text == "[图片]"
    assert citizen_row.meta["kind"] == "image"
    largest = max(update["message"]["photo"], key=lambda size: size["width"])
    assert citizen_row.meta["telegram"]["file_id"] == largest["file_id"]


async def _rows_with(tg: TelegramSystem, chat_id: int, count: int) -> list[Message] | None:
    rows = await rows_for(tg, chat_id)
    return rows if len(rows) >= count else None


async def test_start_gets_the_welcome_once(tg: TelegramSystem) -> None:
    user = new_user()
    update = text_update(user, "/start")
    assert (await post(tg.hubs.url, update)).status_code == 200
    sent = await wait_for(lambda: tg.telegram.sent_to(user.id))
    assert len(sent) == 1 and "欢迎" in sent[0]
    assert (await post(tg.hubs.urls[1], update)).status_code == 200  # Telegram resends it
    await asyncio.sleep(0.8)
    assert len(tg.telegram.sent_to(user.id)) == 1
    assert tg.rasa.received.count("/start") == 0  # the welcome is the hub's, not a bot question
    rows = await rows_for(tg, user.id)
    assert [r.sender for r in rows] == ["system", "bot"]


async def test_a_resent_update_is_one_row_and_one_answer(tg: TelegramSystem) -> None:
    user = new_user()
    update = text_update(user, "公积金怎么提取", update_id=next_update_id())
    replies = await asyncio.gather(*(post(url, update) for url in tg.hubs.urls * 2))
    assert all(reply.status_code == 200 for reply in replies)
    await wait_for(lambda: tg.telegram.sent_to(user.id))
    await asyncio.sleep(0.8)
    rows = await rows_for(tg, user.id)
    assert [r.sender for r in rows].count("citizen") == 1
    assert tg.telegram.sent_to(user.id) == ["收到：公积金怎么提取"]


async def test_quick_replies_become_inline_buttons_and_presses_come_back(tg: TelegramSystem) -> None:
    user = new_user()
    assert (await post(tg.hubs.url, text_update(user, "给我按钮"))).status_code == 200
    messages = await wait_for(lambda: tg.telegram.messages_to(user.id))
    markup = messages[0]["reply_markup"]
    buttons = [button for row in markup["inline_keyboard"] for button in row]
    expected = [("办理居住证", "/ask_residence"), ("转人工", "转人工")]
    assert [(b["text"], b["callback_data"]) for b in buttons] == expected
    assert (await post(tg.hubs.url, button_update(user, "办理居住证", "/ask_residence"))).status_code == 200
    await wait_for(lambda: len(tg.telegram.sent_to(user.id)) >= 2)
    rows = await rows_for(tg, user.id)
    pressed = [r for r in rows if r.sender == "citizen"][-1]
    assert pressed.text == "/ask_residence" and pressed.meta["button_title"] == "办理居住证"
    assert tg.telegram.called("answerCallbackQuery") >= 1


async def test_unsupported_message_gets_a_polite_reply_and_is_not_stored(tg: TelegramSystem) -> None:
    user = new_user()
    assert (await post(tg.hubs.url, sticker_like_update(user))).status_code == 200
    sent = await wait_for(lambda: tg.telegram.sent_to(user.id))
    assert "文字" in sent[0]
    assert await rows_for(tg, user.id) == []


async def test_an_agent_reply_is_delivered(tg: TelegramSystem) -> None:
    user = new_user()
    # 找人工 hands off (a handoff keyword, or the fake Rasa's outage on 人工): the citizen is queued
    async with AgentClient(tg.hubs.urls[1], "agent1", "agent1pass") as agent:
        assert (await post(tg.hubs.url, text_update(user, "我要找人工"))).status_code == 200
        queued = await wait_for(lambda: [t for t in tg.telegram.sent_to(user.id) if "排队" in t])
        assert queued, tg.telegram.sent_to(user.id)
        rows = await rows_for(tg, user.id)
        conversation_id = rows[0].conversation_id
        await agent.next_frame(
            "queue", where=lambda f: any(i["conversation_id"] == conversation_id for i in f["items"])
        )
        await agent.send({"type": "accept", "conversation_id": conversation_id})
        await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conversation_id)
        await agent.send(
            {
                "type": "reply",
                "conversation_id": conversation_id,
                "text": "您好，我是张敏，请问办理什么业务？",
                "client_id": "tg-agent-1",
            }
        )
        delivered = await wait_for(lambda: [t for t in tg.telegram.sent_to(user.id) if "请问办理什么业务" in t])
    assert delivered == ["张敏：您好，我是张敏，请问办理什么业务？"]
    # the citizen's next message goes to the agent, not the bot
    received = len(tg.rasa.received)
    assert (await post(tg.hubs.url, text_update(user, "我想问一下社保"))).status_code == 200
    await asyncio.sleep(0.8)
    assert len(tg.rasa.received) == received


async def test_blocked_citizen_becomes_a_note_for_the_agent(tg: TelegramSystem) -> None:
    user = new_user()
    tg.telegram.block(user.id)
    assert (await post(tg.hubs.url, text_update(user, "你好"))).status_code == 200
    rows = await wait_for(lambda: _rows_with(tg, user.id, 3))
    note = rows[-1]
    assert note.sender == "system" and "未能送达" in note.text and note.meta["delivery_error"] == "Forbidden"


async def test_set_webhook_registers_url_and_secret(tg: TelegramSystem) -> None:
    config = TelegramConfig(enabled=True, token=TOKEN, secret_token=SECRET, api_base_url=tg.telegram.base_url)
    assert await set_webhook(config, "https://hub.example.gov.cn/")
    assert tg.telegram.webhook["url"] == "https://hub.example.gov.cn/telegram/webhook"
    assert tg.telegram.webhook["secret_token"] == SECRET
    assert tg.telegram.webhook["allowed_updates"] == ["message", "callback_query"]

"""A burst of chat frames from one visitor (issue #12, Security 5 and 10): the socket stays open, every
message is either acknowledged (and stored) or refused with a polite Chinese error frame naming it,
per visitor and per client address, across workers (Redis)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from channels.web import ERRORS
from core.db import make_engine
from core.models import Message
from core.redis_client import make_redis
from tests.channels.telegram_fake import ChannelHub, FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.support import TEST_REDIS_URL, ChatClient

PER_VISITOR, PER_ADDRESS = 30, 45


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    rasa = FakeRasa(delay_seconds=0.3).start()  # a bot that takes its time: the burst outlasts a ping
    env = {
        "RASA_URL": rasa.url,
        "ZWKF_CHANNELS__WEB__MESSAGES_PER_MINUTE": str(PER_VISITOR),
        "ZWKF_CHANNELS__WEB__MESSAGES_PER_MINUTE_PER_IP": str(PER_ADDRESS),
    }
    started = start_channel_hubs(tmp_path_factory.mktemp("burst"), env, workers=2, log_name="burst")
    try:
        yield started
    finally:
        stop_channel_hubs(started)
        rasa.stop()


async def burst(chat: ChatClient, count: int) -> tuple[dict[str, dict], dict[str, dict]]:
    """Send `count` messages at once; wait until each has its ack or its refusal."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    for number, client_id in enumerate(ids):
        await chat.send_frame({"type": "message", "text": f"第{number}条消息", "client_id": client_id})
    acks: dict[str, dict] = {}
    refusals: dict[str, dict] = {}
    deadline = time.monotonic() + 60
    while len(acks) + len(refusals) < count:
        frame = await chat.next_frame(timeout=max(0.1, deadline - time.monotonic()))
        if frame["type"] == "ack":
            acks[frame["client_id"]] = frame["message"]
        elif frame["type"] == "error":
            refusals[frame["client_id"]] = frame
    assert set(acks) | set(refusals) == set(ids)
    return acks, refusals


async def citizen_rows(database_url: str, conversation_id: str) -> list[int]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Message.id).where(
                Message.conversation_id == conversation_id, Message.sender == "citizen"))
            return sorted(row[0] for row in rows)
    finally:
        await engine.dispose()


async def test_a_burst_is_throttled_politely_and_the_socket_stays_open(hub: ChannelHub) -> None:
    async with ChatClient(hub.urls[0]) as chat:
        acks, refusals = await burst(chat, 200)
        assert len(acks) == PER_VISITOR and len(refusals) == 200 - PER_VISITOR
        assert {r["code"] for r in refusals.values()} == {"rate_limited"}
        assert {r["reason"] for r in refusals.values()} == {ERRORS["rate_limited"]}
        assert "稍等" in ERRORS["rate_limited"]
        # still open and answering, after the bot has worked through what it accepted
        await asyncio.sleep(1)
        await chat.send_frame({"type": "ping"})
        await chat.next_frame("pong", timeout=30)
        # every acknowledged message is stored, nothing refused is
        stored = await citizen_rows(hub.database_url, chat.conversation_id)
        assert stored == sorted(m["id"] for m in acks.values())
        # the other worker shares the count: this visitor is refused there too
        async with ChatClient(hub.urls[1], visitor_id=chat.visitor_id) as same:
            again, refused = await burst(same, 1)
            assert not again and len(refused) == 1
        # and the bot answered every accepted message
        texts = {json.dumps(f, ensure_ascii=False) for f in chat.frames if f["type"] == "message"}
        assert len([t for t in texts if "收到：第" in t]) >= 1


async def test_one_address_is_limited_across_visitors(hub: ChannelHub) -> None:
    redis = make_redis(TEST_REDIS_URL)
    try:  # a fresh minute for this machine's address (the test before used some of it)
        await redis.delete(f"{hub.prefix}web:chat:ip:127.0.0.1")
    finally:
        await redis.aclose()
    async with ChatClient(hub.urls[0]) as first, ChatClient(hub.urls[1]) as second:
        accepted, _ = await burst(first, PER_VISITOR)
        assert len(accepted) == PER_VISITOR
        acks, refusals = await burst(second, 20)  # another visitor, same address, on the other worker
    assert len(acks) == PER_ADDRESS - PER_VISITOR and len(refusals) == 20 - (PER_ADDRESS - PER_VISITOR)

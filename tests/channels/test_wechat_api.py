"""The WeChat channel against the fake WeChat API and the real Redis, with a stand-in hub:
the shared access_token, refresh on 40001/42001, retries, 45015 surfaced, and the
passive-reply / customer-service-API split of the five-second rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from channels.base import InboundMessage, OutboundMessage
from channels.wechat import WeChatAPI, WeChatAPIError, WeChatChannel, WeChatConfig
from core.redis_client import Keys
from tests.channels.wechat_fake import AES_KEY, APP_ID, APP_SECRET, TOKEN, FakeWeChat, Platform, message_xml, openid
from tests.support import TEST_REDIS_URL, unique_prefix

PLATFORM = Platform()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeChat]:
    server = FakeWeChat().start()
    yield server
    server.stop()


@pytest.fixture
async def redis() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    client = aioredis.from_url(TEST_REDIS_URL, decode_responses=True)
    prefix = unique_prefix()
    yield client, prefix
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


def make_config(fake: FakeWeChat, **extra: Any) -> WeChatConfig:
    values = dict(
        enabled=True,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        token=TOKEN,
        encoding_aes_key=AES_KEY,
        mode="safe",
        api_base_url=fake.url,
        passive_reply_budget_ms=600,
        fetch_user_info=False,
    )
    values.update(extra)
    return WeChatConfig.from_tree(values)


def make_api(fake: FakeWeChat, redis: tuple[aioredis.Redis, str], **extra: Any) -> WeChatAPI:
    client, prefix = redis
    return WeChatAPI(make_config(fake, **extra), client, Keys(prefix), backoff=(0.01, 0.02, 0.04))


async def test_one_token_for_every_worker_fetched_once(fake: FakeWeChat, redis) -> None:
    workers = [make_api(fake, redis) for _ in range(3)]
    before = fake.token_fetches
    tokens = await asyncio.gather(*(worker.token() for worker in workers for _ in range(10)))
    assert len(set(tokens)) == 1 and fake.token_fetches == before + 1
    for worker in workers:
        await worker.aclose()


async def test_an_expired_or_invalid_token_is_refreshed_once_and_the_call_retried(fake: FakeWeChat, redis) -> None:
    api = make_api(fake, redis)
    user = openid()
    await api.send_text(user, "第一条")
    fetches = fake.token_fetches
    fake.expire_tokens()
    await api.send_text(user, "第二条")  # 42001 -> refresh -> retried
    fake.invalidate_tokens()
    await api.send_text(user, "第三条")  # 40001 -> refresh -> retried
    assert fake.token_fetches == fetches + 2
    assert fake.sent_to(user) == ["第一条", "第二条", "第三条"]
    await api.aclose()


async def test_a_token_close_to_expiry_is_refreshed_early_by_one_worker(fake: FakeWeChat, redis) -> None:
    fake.token_ttl = 4  # refresh_at = fetch + 2 s; kept in Redis until fetch + 1 s... at least 1 s
    try:
        workers = [make_api(fake, redis) for _ in range(4)]
        first = await workers[0].token()
        fetches = fake.token_fetches
        await asyncio.sleep(2.2)
        tokens = await asyncio.gather(*(worker.token() for worker in workers))
        assert fake.token_fetches == fetches + 1  # exactly one worker refreshed
        assert first not in set(tokens) or len(set(tokens)) <= 2
        for worker in workers:
            await worker.aclose()
    finally:
        fake.token_ttl = 7200


async def test_system_busy_is_retried_with_backoff(fake: FakeWeChat, redis) -> None:
    api = make_api(fake, redis)
    await api.token()
    user = openid()
    fake.busy(2)
    await api.send_text(user, "稍后到达")
    assert fake.sent_to(user) == ["稍后到达"]
    fake.busy(10)
    with pytest.raises(WeChatAPIError) as caught:
        await api.send_text(user, "到不了")
    assert caught.value.code == -1
    fake.busy(0)
    await api.aclose()


async def test_errors_that_are_not_transient_are_raised_at_once(fake: FakeWeChat, redis) -> None:
    api = make_api(fake, redis)
    user = openid()
    fake.close_window(user)
    with pytest.raises(WeChatAPIError) as caught:
        await api.send_text(user, "超过48小时")
    assert caught.value.code == 45015 and "48" in caught.value.chinese
    bad = WeChatAPI(make_config(fake, app_id="wx_wrong_app_id_000"), redis[0], Keys(redis[1] + "other:"))
    with pytest.raises(WeChatAPIError) as caught:
        await bad.token()
    assert caught.value.code == 40013
    await bad.aclose()
    unreachable = WeChatAPI(
        make_config(fake, api_base_url="http://127.0.0.1:9"), redis[0], Keys(redis[1] + "x:"), backoff=(0.01,)
    )
    with pytest.raises(WeChatAPIError) as caught:
        await unreachable.token()
    assert caught.value.code == "network"
    await unreachable.aclose()
    await api.aclose()


# -- the channel with a stand-in hub --------------------------------------------------------


@dataclass
class Conversation:
    id: str
    citizen_id: int
    channel: str = "wechat"


class StandInHub:
    """Dedupes like the store, 'asks the bot' by sending replies after `bot_seconds`."""

    def __init__(self, channel_ref: list[WeChatChannel], bot_seconds: float = 0.0) -> None:
        self.channel_ref = channel_ref
        self.bot_seconds = bot_seconds
        self.rows: dict[str, InboundMessage] = {}
        self.notes: list[tuple[str, str, dict]] = []
        self.next_id = 0

    async def open_conversation(self, channel: str, user: str) -> Conversation:
        return Conversation(f"conv-{user}", 1)

    async def on_inbound(self, inbound: InboundMessage, ack: Any) -> None:
        await asyncio.sleep(0.01)
        is_new = inbound.channel_message_id not in self.rows
        self.rows.setdefault(inbound.channel_message_id, inbound)
        await ack(None)
        if not is_new:
            return
        await asyncio.sleep(self.bot_seconds)
        await self.say(Conversation(f"conv-{inbound.channel_user_id}", 1), "bot", f"收到：{inbound.text}")
        if "两条" in inbound.text:
            await self.say(Conversation(f"conv-{inbound.channel_user_id}", 1), "bot", "第二条")

    async def say(self, conversation: Conversation, sender: str, text: str, *, sender_name: str = "", meta=None):
        self.next_id += 1
        user = conversation.id.removeprefix("conv-")
        await self.channel_ref[0].send(user, OutboundMessage(conversation.id, self.next_id, sender, sender_name, text))

    async def note(self, conversation_id: str, text: str, meta: dict, *, channel_message_id: str | None = None) -> bool:
        self.notes.append((conversation_id, text, meta))
        return True

    async def set_profile(self, citizen_id: int, *, name: str | None, unionid: str | None) -> None:
        return None


async def make_channel(
    fake: FakeWeChat, redis, bot_seconds: float = 0.0, **extra: Any
) -> tuple[WeChatChannel, StandInHub]:
    ref: list[WeChatChannel] = []
    hub = StandInHub(ref, bot_seconds)
    client, prefix = redis
    config = make_config(fake, **extra)
    keys = Keys(prefix)
    channel = WeChatChannel(config, hub, hub, client, keys, WeChatAPI(config, client, keys, backoff=(0.01,)))
    ref.append(channel)
    return channel, hub


async def test_a_fast_bot_answers_passively_and_retries_get_the_same_answer(fake: FakeWeChat, redis) -> None:
    channel, hub = await make_channel(fake, redis)
    user = openid()
    query, body = PLATFORM.push(message_xml("text", user, Content="两条回复"), "safe")
    first, second, third = await asyncio.gather(*(channel.receive(query, body) for _ in range(3)))
    contents = [PLATFORM.open_reply(reply.body, query)["Content"] for reply in (first, second, third)]
    assert contents == ["收到：两条回复\n\n第二条"] * 3
    assert len(hub.rows) == 1 and fake.sent_to(user) == []
    await channel.aclose()


async def test_a_slow_bot_answers_success_then_through_the_api(fake: FakeWeChat, redis) -> None:
    channel, hub = await make_channel(fake, redis, bot_seconds=1.2)
    user = openid()
    query, body = PLATFORM.push(message_xml("text", user, Content="两条慢"), "safe")
    replies = await asyncio.gather(*(channel.receive(query, body) for _ in range(3)))
    assert [reply.body for reply in replies] == ["success"] * 3
    await asyncio.sleep(1.0)
    await channel.drain()
    assert fake.sent_to(user) == ["收到：两条慢", "第二条"]  # in order, once
    assert len(hub.rows) == 1
    await channel.aclose()


async def test_agent_messages_go_through_the_api_and_failures_are_noted(fake: FakeWeChat, redis) -> None:
    channel, hub = await make_channel(fake, redis)
    user = openid()
    await channel.send(user, OutboundMessage(f"conv-{user}", 7, "agent", "张敏", "您好，我是人工客服"))
    assert fake.sent_to(user) == ["您好，我是人工客服"]
    fake.close_window(user)
    await channel.send(user, OutboundMessage(f"conv-{user}", 8, "agent", "张敏", "还在吗"))
    conversation_id, text, meta = hub.notes[-1]
    assert conversation_id == f"conv-{user}" and meta == {"delivery_error": 45015, "message_id": 8}
    assert "48 小时" in text
    await channel.aclose()

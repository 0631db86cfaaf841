"""The WeChat channel wired into a real worker's services (SQLite and PostgreSQL): agent
replies through the customer-service API, delivery errors recorded and published for the
agent, the citizen's profile, and `python -m channels.wechat.menu`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis

from channels.wechat import menu
from core.config import Settings
from hub.routes.wechat import start_wechat, stop_wechat
from hub.services import build_services
from tests.channels.wechat_fake import AES_KEY, APP_ID, APP_SECRET, TOKEN, FakeWeChat, openid
from tests.support import TEST_REDIS_URL, unique_prefix


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeChat]:
    server = FakeWeChat().start()
    yield server
    server.stop()


def wechat_overrides(fake: FakeWeChat) -> dict[str, object]:
    return {
        "wechat.enabled": True,
        "wechat.app_id": APP_ID,
        "wechat.app_secret": APP_SECRET,
        "wechat.token": TOKEN,
        "wechat.encoding_aes_key": AES_KEY,
        "wechat.mode": "safe",
        "wechat.api_base_url": fake.url,
    }


@pytest.fixture
async def app(settings: Settings, fake: FakeWeChat, redis_client: aioredis.Redis) -> AsyncIterator[SimpleNamespace]:
    services = await build_services(settings.with_overrides(wechat_overrides(fake)))
    app = SimpleNamespace(ctx=SimpleNamespace(services=services))
    await start_wechat(app)
    yield app
    await stop_wechat(app)
    await services.close()


async def test_agent_replies_go_through_the_customer_service_api(app: SimpleNamespace, fake: FakeWeChat) -> None:
    services, user = app.ctx.services, openid()
    assert services.dispatcher.channels["wechat"] is app.ctx.wechat
    conversation = await services.dispatcher.open_conversation("wechat", user)
    await services.dispatcher.say(conversation, "agent", "您好，我是人工客服张敏", sender_name="张敏")
    assert fake.sent_to(user) == ["您好，我是人工客服张敏"]
    transcript = await services.conversations.transcript(conversation.id)
    assert [(m.sender, m.text) for m in transcript] == [("agent", "您好，我是人工客服张敏")]


async def test_a_delivery_error_is_recorded_and_published_for_the_agent(
    app: SimpleNamespace, fake: FakeWeChat, redis_client: aioredis.Redis
) -> None:
    services, user = app.ctx.services, openid()
    fake.close_window(user)
    conversation = await services.dispatcher.open_conversation("wechat", user)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(services.keys.events_channel())
    try:
        sent = await services.dispatcher.say(conversation, "agent", "请问还在吗？", sender_name="张敏")
        events = []
        deadline = asyncio.get_running_loop().time() + 5
        while asyncio.get_running_loop().time() < deadline and len(events) < 2:
            raw = await pubsub.get_message(timeout=0.5)
            if raw and raw["type"] == "message":
                events.append(json.loads(raw["data"]))
    finally:
        await pubsub.aclose()
    transcript = await services.conversations.transcript(conversation.id)
    assert [m.sender for m in transcript] == ["agent", "system"]
    error = transcript[1]
    assert error.meta == {"delivery_error": 45015, "message_id": sent.id} and "48 小时" in error.text
    published = [e for e in events if e["kind"] == "message" and e["message"]["meta"].get("delivery_error")]
    assert published and published[0]["conversation_id"] == conversation.id and published[0]["channel"] == "wechat"


async def test_the_profile_learns_the_nickname_and_links_the_unionid(app: SimpleNamespace, fake: FakeWeChat) -> None:
    services, user = app.ctx.services, openid()
    fake.nicknames[user], fake.unionids[user] = "李四", "unionid-" + user
    conversation = await services.dispatcher.open_conversation("wechat", user)
    await app.ctx.wechat._learn_profile(user)
    citizen = await services.citizens.get(conversation.citizen_id)
    assert citizen.name == "李四"
    assert ("wechat_unionid", "unionid-" + user) in citizen.identities
    assert await services.citizens.resolve("wechat_unionid", "unionid-" + user) == citizen.id


def test_the_menu_command_creates_the_configured_menu(fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "ZWKF_WECHAT__APP_ID": APP_ID,
        "ZWKF_WECHAT__APP_SECRET": APP_SECRET,
        "ZWKF_WECHAT__API_BASE_URL": fake.url,
        "REDIS_URL": TEST_REDIS_URL,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": unique_prefix(),
    }.items():
        monkeypatch.setenv(key, value)
    before = len(fake.menus)
    assert menu.main([]) == 0
    assert len(fake.menus) == before + 1
    created = fake.menus[-1]
    assert created["button"][0]["name"] == "办事指南"
    assert "question" not in json.dumps(created)  # our mapping fields stay home
    monkeypatch.setenv("ZWKF_WECHAT__APP_ID", "wx_wrong_app_id_000")
    assert menu.main([]) == 1

"""A Redis with a password (issue #12): `storage.redis_url` with one works for the hub and Rasa's
stores, and the launcher's private Redis requires one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.server import redis_env
from core.redis_client import make_redis
from core.redis_server import redis_answers, start_private_redis
from tests.channels.telegram_fake import ChannelHub, FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.support import ChatClient, free_port, stop_process

PASSWORD = 'p@ss:w/rd "x"'


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_private_redis(Path(tmp_path_factory.mktemp("redis")), port=free_port(), password=PASSWORD)
    try:
        yield url
    finally:
        stop_process(process)


async def test_the_private_redis_wants_its_password(private_redis: str) -> None:
    assert redis_answers(private_redis)
    assert not redis_answers(private_redis.replace("%40", "X", 1))  # a wrong password is no Redis to use
    with_password = make_redis(private_redis)
    without = make_redis("redis://" + private_redis.split("@", 1)[1])
    try:
        assert await with_password.ping()
        with pytest.raises(aioredis.AuthenticationError):
            await without.ping()
    finally:
        await with_password.aclose()
        await without.aclose()
    assert redis_env(private_redis)["REDIS_PASSWORD"] == PASSWORD  # what Rasa's tracker and lock stores get


@pytest.fixture(scope="module")
def hub(private_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    rasa = FakeRasa().start()
    env = {"RASA_URL": rasa.url, "REDIS_URL": private_redis.rsplit("/", 1)[0] + "/3"}
    started = start_channel_hubs(tmp_path_factory.mktemp("redis-hub"), env, log_name="redis-password")
    try:
        yield started
    finally:
        stop_channel_hubs(started)
        rasa.stop()


async def test_a_hub_on_a_redis_with_a_password_serves_citizens(hub: ChannelHub, private_redis: str) -> None:
    async with ChatClient(hub.urls[0]) as citizen:
        reply = await citizen.ask("你好")
    assert reply["sender"] in ("bot", "system") and reply["text"]
    redis = make_redis(private_redis.rsplit("/", 1)[0] + "/3")
    try:
        assert await redis.exists(f"{hub.prefix}conv:{citizen.conversation_id}") or await redis.dbsize() > 0
    finally:
        await redis.aclose()

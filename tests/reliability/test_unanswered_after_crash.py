"""A hub worker dies after committing a citizen's WeChat message and before answering it.

Two hub workers share the database and Redis. Worker A stores the message, asks the (slow)
bot and is killed (SIGKILL) while waiting, so WeChat never gets a response and retries,
as it does, on the other worker. The message is already stored, so the retry is a duplicate,
but it was never answered: the hub must still answer it, exactly once (flow/recovery.py: the
dead worker's lease is taken over, by the sweeper or by a retry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from core.db import make_engine
from core.models import Message
from tests.channels.wechat_fake import (
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeRasa,
    FakeWeChat,
    Platform,
    message_xml,
    next_msg_id,
    openid,
)
from tests.support import ROOT, TEST_REDIS_URL, free_port, start_hub, stop_process, system_database, unique_prefix

SLOW_BOT_SECONDS = 3.0  # the fake Rasa's delay for a text with 慢: long enough to kill the worker meanwhile
BUDGET_MS = 4000  # the passive-reply budget: worker A is still inside it when it dies
LOG_DIR = ROOT / "var" / "test-logs"


@dataclass
class TwoWorkers:
    a: str
    b: str
    a_process: object
    wechat: FakeWeChat
    database_url: str


@pytest.fixture
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    with system_database(tmp_path_factory.mktemp("crash")) as database_url:
        wechat, rasa = FakeWeChat().start(), FakeRasa(slow_seconds=SLOW_BOT_SECONDS).start()
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "RASA_URL": rasa.url,
            "ZWKF_STORAGE__REDIS_KEY_PREFIX": unique_prefix(),
            "ZWKF_WECHAT__ENABLED": "true",
            "ZWKF_WECHAT__MODE": "plaintext",
            "ZWKF_WECHAT__APP_ID": APP_ID,
            "ZWKF_WECHAT__APP_SECRET": APP_SECRET,
            "ZWKF_WECHAT__TOKEN": TOKEN,
            "ZWKF_WECHAT__API_BASE_URL": wechat.url,
            "ZWKF_WECHAT__PASSIVE_REPLY_BUDGET_MS": str(BUDGET_MS),
            "ZWKF_WECHAT__FETCH_USER_INFO": "false",
        }
        processes = []
        try:
            ports = [free_port(), free_port()]
            for name, port in zip("ab", ports, strict=True):
                processes.append(start_hub(env, port, LOG_DIR / f"crash-{name}.log"))
            yield TwoWorkers(
                f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", processes[0], wechat, database_url
            )
        finally:
            for process in processes:
                stop_process(process)
            wechat.stop()
            rasa.stop()


async def transcript(database_url: str, msg_id: str) -> list[tuple[str, str]]:
    """(sender, text) of the conversation that holds the WeChat message `msg_id`."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(
                select(Message.conversation_id).where(Message.channel_message_id == f"msg:{msg_id}")
            )).scalar_one_or_none()
            if first is None:
                return []
            rows = await conn.execute(
                select(Message.sender, Message.text).where(Message.conversation_id == first).order_by(Message.id)
            )
            return [(sender, text) for sender, text in rows]
    finally:
        await engine.dispose()


async def test_a_message_stored_by_a_worker_that_died_is_answered_exactly_once(workers: TwoWorkers) -> None:
    platform, user, msg_id = Platform(), openid(), next_msg_id()
    question = "慢：请问居住证怎么办理"
    answer = f"收到：{question}"
    query, body = platform.push(message_xml("text", user, msg_id=msg_id, Content=question), "plaintext")
    passive: list[str] = []

    async def deliver(client: httpx.AsyncClient, url: str) -> None:
        """One push as WeChat sends it; a passive reply's content is what the citizen sees."""
        try:
            reply = await client.post(url + "/wechat", params=query, content=body)
        except httpx.TransportError:
            return  # the worker died with the request open: WeChat will retry
        if reply.status_code == 200 and reply.text != "success":
            passive.append(platform.open_reply(reply.text, query)["Content"])

    async with httpx.AsyncClient(timeout=30) as client:
        first = asyncio.create_task(deliver(client, workers.a))
        deadline = time.monotonic() + 20
        while not await transcript(workers.database_url, msg_id):  # stored (and the bot is being asked)
            assert time.monotonic() < deadline, "worker A never stored the message"
            await asyncio.sleep(0.05)
        workers.a_process.kill()  # type: ignore[attr-defined]  # SIGKILL: no cleanup of any kind
        await first
        assert passive == [] and workers.wechat.sent_to(user) == []  # nothing was answered before the crash

        # WeChat retries three times, about 5 s apart; here they go to the surviving worker
        for _ in range(3):
            await asyncio.sleep(5)
            await deliver(client, workers.b)
        deadline = time.monotonic() + 20
        while not passive and not workers.wechat.sent_to(user):
            assert time.monotonic() < deadline, "the stored message was never answered"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2 * SLOW_BOT_SECONDS)  # time enough for a second answer to show up, were there one

    delivered = passive + workers.wechat.sent_to(user)
    assert delivered == [answer]
    assert await transcript(workers.database_url, msg_id) == [("citizen", question), ("bot", answer)]

"""👍/👎 votes (POST /api/feedback) are limited per web visitor, across workers (Redis).

Two hub workers share Redis: a visitor who votes past the limit, on either worker, gets
429 with a Chinese reason and the refused vote changes nothing; another visitor is not
affected by it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from core.db import make_engine
from core.models import KbFeedback
from core.rate_limit import FEEDBACK_REFUSED
from tests.channels.telegram_fake import ChannelHub, FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.support import ChatClient

LIMIT = 5


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    rasa = FakeRasa().start()
    env = {"RASA_URL": rasa.url, "ZWKF_CHANNELS__WEB__FEEDBACK_PER_MINUTE": str(LIMIT)}
    started = start_channel_hubs(tmp_path_factory.mktemp("feedback"), env, workers=2, log_name="feedback")
    try:
        yield started
    finally:
        stop_channel_hubs(started)
        rasa.stop()


async def stored_vote(database_url: str, message_id: int) -> str | None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(
                select(KbFeedback.vote).where(KbFeedback.message_id == message_id)
            )).scalar_one_or_none()
    finally:
        await engine.dispose()


async def test_votes_past_the_limit_are_refused_in_chinese_and_change_nothing(hubs: ChannelHub) -> None:
    async with ChatClient(hubs.urls[0]) as chat:
        await chat.say("知识库里的问题")
        answer = await chat.reply_from("bot")
    vote = {"message_id": answer["id"], "visitor_id": chat.visitor_id}
    async with httpx.AsyncClient(timeout=30) as http:
        for index in range(LIMIT):  # alternating workers: the count is shared
            reply = await http.post(hubs.urls[index % 2] + "/api/feedback", json={**vote, "vote": "up"})
            assert reply.status_code == 200, reply.text
        for url in hubs.urls:
            refused = await http.post(url + "/api/feedback", json={**vote, "vote": "down"})
            assert refused.status_code == 429
            assert refused.json()["reason"] == FEEDBACK_REFUSED == "评价过于频繁，请稍后再试。"
        assert await stored_vote(hubs.database_url, answer["id"]) == "up"

        # another visitor has their own allowance (this message is not theirs: 404, not 429)
        stranger = await http.post(
            hubs.urls[0] + "/api/feedback", json={**vote, "visitor_id": str(uuid.uuid4()), "vote": "down"}
        )
        assert stranger.status_code == 404
        assert "没有找到" in stranger.json()["reason"]

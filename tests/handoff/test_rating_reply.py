"""The citizen's reply to the 满意度评价 prompt is a rating (issue 13.1), whatever the channel:
"5分，服务很好" after 结束会话 is recorded as a 5 with its comment and thanked for; the bot is not
asked and nobody is queued. A question instead of a rating goes to the bot; only the first reply
after the prompt is read."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from core.config import Settings
from core.models import CsatRating
from flow.rating_reply import read_rating
from handoff import Owner
from tests.handoff.helpers import Hub, make_hub


@pytest.fixture
async def hub(settings: Settings, redis_client: aioredis.Redis):
    made = await make_hub(settings, redis_client)
    yield made
    await made.close()


async def _served_and_closed(hub: Hub, visitor: str) -> str:
    agent = hub.users["agent1"]
    await hub.handoff.connect(agent)
    conv = await hub.citizen_writes(visitor, "转人工")
    await hub.handoff.accept(conv, agent)
    await hub.handoff.close(conv, agent.id, "resolved", "")
    return conv.id


async def _ratings(hub: Hub) -> list[CsatRating]:
    async with hub.sessions() as session:
        return list((await session.execute(select(CsatRating))).scalars().all())


@pytest.mark.parametrize(
    ("text", "score", "comment"),
    [
        ("5", 5, ""),
        ("5分，服务很好", 5, "5分，服务很好"),
        ("非常满意", 5, "非常满意"),
        ("不满意", 2, "不满意"),
        ("三分", 3, ""),
    ],
)
async def test_a_typed_reply_to_the_prompt_is_a_rating_not_a_question(
    hub: Hub, text: str, score: int, comment: str
) -> None:
    closed = await _served_and_closed(hub, "v-rates")
    asked_before = list(hub.rasa.asked)
    now = await hub.citizen_writes("v-rates", text)
    assert hub.rasa.asked == asked_before, "the bot was asked to answer a rating"
    assert (await hub.ownership.state(now.id)).owner == Owner.BOT  # nobody was queued
    [rating] = await _ratings(hub)
    assert (rating.conversation_id, rating.score, rating.comment) == (closed, score, comment)
    last = (await hub.messages(now.id))[-1]
    assert last.sender == "system" and last.meta.get("csat_done") and last.text == "感谢您的评价！"
    assert last.meta.get("score") == score  # the chat page shows the stars given


async def test_a_question_after_the_prompt_goes_to_the_bot_and_only_the_first_reply_counts(hub: Hub) -> None:
    await _served_and_closed(hub, "v-asks")
    await hub.citizen_writes("v-asks", "居住证怎么办理")
    assert hub.rasa.asked[-1] == "居住证怎么办理"
    await hub.citizen_writes("v-asks", "5")  # the prompt was answered by a question: "5" is just a message now
    assert hub.rasa.asked[-1] == "5"
    assert await _ratings(hub) == []


def test_what_reads_as_a_rating() -> None:
    assert read_rating("打5星") == (5, "")
    assert read_rating("还行吧") == (3, "还行吧")
    assert read_rating("不太满意") == (2, "不太满意")
    for question in ("5个工作日能办好吗", "我不满意，要投诉", "满意度怎么查？", "", "满意" * 200):
        assert read_rating(question) is None

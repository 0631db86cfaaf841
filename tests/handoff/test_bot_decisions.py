"""Who answers: a sure KB answer beats a weak handoff guess; an explicit ask always hands off (#13.2)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from core.config import Settings
from handoff import Owner
from tests.handoff.helpers import Hub, make_hub


@pytest.fixture
async def hub(settings: Settings, redis_client: aioredis.Redis):
    made = await make_hub(settings, redis_client)
    yield made
    await made.close()


async def test_a_sure_kb_answer_wins_over_a_weak_handoff_intent(hub: Hub) -> None:
    question = "人去世了有丧葬费吗"
    hub.answers.known[question] = ("K1", "社保", "可申领丧葬补助金……")
    hub.rasa.intents[question] = "request_human"
    hub.rasa.confidence[question] = 0.65
    conv = await hub.citizen_writes("v-funeral", question)
    assert (await hub.ownership.state(conv.id)).owner == Owner.BOT
    assert ("bot", "可申领丧葬补助金……") in [(m.sender, m.text) for m in await hub.messages(conv.id)]


async def test_a_sure_handoff_intent_still_hands_off(hub: Hub) -> None:
    question = "你们这办事效率我真受不了了"
    hub.answers.known[question] = ("K2", "社保", "……")
    hub.rasa.intents[question] = "complaint"
    hub.rasa.confidence[question] = 0.97
    conv = await hub.citizen_writes("v-angry", question)
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED


async def test_an_explicit_ask_hands_off_whatever_the_kb_says(hub: Hub) -> None:
    question = "丧葬费的事我想找人工客服"
    hub.answers.known[question] = ("K1", "社保", "可申领丧葬补助金……")
    hub.rasa.intents[question] = "request_human"
    hub.rasa.confidence[question] = 0.6
    conv = await hub.citizen_writes("v-explicit", question)
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED

"""发布预览 decides like the live bot and shows where an intent takes a question from the KB (#13.24, #13.25)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.models import Citizen, Conversation, Message
from core.redis_client import Keys
from kb_sync import AnswerService, KbStore, read_jsonl
from kb_sync.preview import draft_from, preview_draft
from tests.support import ROOT


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url)
    yield engine
    await engine.dispose()


async def _asked(store: KbStore, texts: list[str]) -> None:
    async with store.sessions() as session, session.begin():
        citizen = Citizen(name=None)
        session.add(citizen)
        await session.flush()
        for text in texts:
            conversation_id = str(uuid.uuid4())
            session.add(Conversation(id=conversation_id, citizen_id=citizen.id, channel="web",
                                     channel_user_id=conversation_id))
            await session.flush()
            session.add(Message(conversation_id=conversation_id, channel="web", sender="citizen", text=text,
                                created_at=datetime.now(UTC)))


async def test_preview_decides_like_the_live_bot_and_flags_intents(
    settings: Settings, redis_client: aioredis.Redis, db: AsyncEngine
) -> None:
    store = KbStore(make_sessionmaker(db))
    await store.upsert(read_jsonl(ROOT / "kb_sync/demo/kb.jsonl"), status="published", editor="demo")
    answers = AnswerService(store, redis_client, Keys(settings.redis_prefix))
    asked = ["养老保险怎么弄", "我要投诉社保窗口的工作人员态度差", "窗口工作人员态度差去哪里投诉"]
    await _asked(store, asked)
    draft = draft_from({"question": "对窗口工作人员不满意怎么投诉？",
                        "similar": ["窗口人员态度差怎么投诉", "投诉社保窗口工作人员"],
                        "answer": "可拨打12345或在政务服务中心意见箱投诉，5个工作日内回复。"},
                       None, "政务服务中心")

    async def intents(text: str) -> tuple[str | None, float]:
        return ("complaint", 0.98) if "我要投诉" in text else ("kb_question", 0.95)

    result = await preview_draft(store, draft, days=30, answers=answers, intents=intents)
    changed = {row["question"]: row for row in result["changed"]}
    for question, row in changed.items():  # "before" is exactly what the live bot does today
        live = await answers.answer(question)
        kind = "answer" if live.answer else ("clarify" if live.clarify else "decline")
        assert row["before_kind"] == kind
    assert "养老保险怎么弄" not in changed  # the draft does not touch it
    took = changed["我要投诉社保窗口的工作人员态度差"]
    assert took["after"]["entry_id"] == "__draft__"
    assert took["intent_takes_over"]["intent"] == "complaint"
    assert "intent_takes_over" not in changed["窗口工作人员态度差去哪里投诉"]

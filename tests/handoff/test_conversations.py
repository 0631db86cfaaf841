"""Transcripts: every message kept in order, channel retries stored once, a row delivered before
its commit never lost."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.models import Message
from crm import CitizenDirectory
from handoff import ConversationStore, MessageView, deliver_before_commit


async def test_transcript_keeps_everyone_in_order_and_dedupes_retries(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        conversations = ConversationStore(sessions)
        citizen = await CitizenDirectory(sessions).resolve("wechat_user", "openid-1")
        conv, created = await conversations.open_for("wechat", "openid-1", citizen)
        again, created_again = await conversations.open_for("wechat", "openid-1", citizen)
        assert created and not created_again and again.id == conv.id

        first, new = await conversations.record(conv.id, "wechat", "citizen", "居住证怎么办", channel_message_id="m1")
        retry, new_retry = await conversations.record(
            conv.id, "wechat", "citizen", "居住证怎么办", channel_message_id="m1"
        )
        assert new and not new_retry and retry.id == first.id
        await conversations.record(conv.id, "wechat", "bot", "请携带身份证……", sender_name="智能客服")
        await conversations.record(conv.id, "wechat", "system", "已为您转接人工客服")
        await conversations.record(conv.id, "wechat", "agent", "您好", sender_name="张敏")

        lines = await conversations.transcript(conv.id)
        assert [(m.sender, m.text) for m in lines] == [
            ("citizen", "居住证怎么办"),
            ("bot", "请携带身份证……"),
            ("system", "已为您转接人工客服"),
            ("agent", "您好"),
        ]
        assert all(m.created_at is not None and m.conversation_id == conv.id for m in lines)
    finally:
        await engine.dispose()


async def _stored(sessions, message_id: int) -> str | None:  # noqa: ANN001 - a sessionmaker
    """The text of a messages row as another connection reads it (None while not committed)."""
    async with sessions() as session:
        row = await session.get(Message, message_id)
        return None if row is None else row.text


async def test_a_row_delivered_before_its_commit_is_committed_and_kept_even_when_its_batch_fails(
    settings: Settings,
) -> None:
    """`deliver_before_commit`: the row comes back with its id before the commit (an agent's reply
    reaches the citizen sooner), `committed` waits for the commit, and a batch that fails (here
    because of another caller's bad row) never loses it: it is written again, with the same id."""
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        conversations = ConversationStore(sessions)
        citizen = await CitizenDirectory(sessions).resolve("web_user", "v-early")
        conv, _ = await conversations.open_for("web", "v-early", citizen)

        with deliver_before_commit():
            first, _ = await conversations.record(conv.id, "web", "agent", "您好，请讲", sender_name="张敏")
            # only one row per context is delivered early: the next one waits for its commit
            second, _ = await conversations.record(conv.id, "web", "agent", "第二句", sender_name="张敏")
        assert await _stored(sessions, second.id) == "第二句"
        await conversations.committed(first.id)
        assert await _stored(sessions, first.id) == "您好，请讲"

        async def early(text: str):  # noqa: ANN202
            with deliver_before_commit():
                message, _ = await conversations.record(conv.id, "web", "agent", text)
                return message

        # one batch: the early row, then a row of a conversation that does not exist (the foreign
        # key fails the whole transaction)
        kept, broken = await asyncio.gather(
            early("不会丢的回复"),
            conversations.record("no-such-conversation", "web", "agent", "坏行"),
            return_exceptions=True,
        )
        assert isinstance(broken, IntegrityError), broken
        assert isinstance(kept, MessageView)
        await conversations.committed(kept.id)
        assert await _stored(sessions, kept.id) == "不会丢的回复"
        lines = [(m.sender, m.text) for m in await conversations.transcript(conv.id)]
        assert lines == [("agent", "您好，请讲"), ("agent", "第二句"), ("agent", "不会丢的回复")]
    finally:
        await engine.dispose()

"""Transcripts: every message kept in order, channel retries stored once."""

from __future__ import annotations

from crm import CitizenDirectory
from handoff import ConversationStore
from hub.config import Settings
from hub.db import make_engine, make_sessionmaker


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

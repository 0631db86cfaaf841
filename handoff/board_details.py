"""Who a board's conversations are about: the citizen's name (from the CRM profile), the channel and
the citizen's last line, for every conversation the 班长看板 lists (waiting or served), in one query.
The board itself comes from Redis (Handoff.board); this is the one database read it adds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Citizen, Conversation, Message

MAX_LINE = 60  # the board shows the start of the last line; the 监听 panel has the rest


async def describe(sessions: async_sessionmaker[AsyncSession], ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    last_line = (
        select(Message.text)
        .where(Message.conversation_id == Conversation.id, Message.sender == "citizen")
        .order_by(Message.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    async with sessions() as session:
        rows = await session.execute(
            select(Conversation.id, Conversation.channel, Citizen.name, last_line)
            .outerjoin(Citizen, Citizen.id == Conversation.citizen_id)
            .where(Conversation.id.in_(wanted))
        )
        return {
            conversation_id: {
                "channel": channel,
                "citizen_name": name or "访客",
                "last_text": (last or "")[:MAX_LINE],
            }
            for conversation_id, channel, name, last in rows
        }

"""Conversations and their transcripts in the database.

A message is committed here before any channel acknowledges it, and a channel's own
message id (WeChat's MsgId, the web widget's client id) makes a retry a no-op.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.message_writer import MessageWriter
from hub.models import Conversation, Message, utcnow


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time the hub stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MessageView:
    """A transcript line as every screen and channel sees it."""

    id: int
    conversation_id: str
    sender: str
    sender_name: str
    text: str
    created_at: datetime
    meta: dict[str, Any]

    @classmethod
    def of(cls, row: Message) -> MessageView:
        return cls(
            row.id, row.conversation_id, row.sender, row.sender_name, row.text, as_utc(row.created_at), row.meta or {}
        )

    @classmethod
    def from_columns(cls, row: dict[str, Any]) -> MessageView:
        return cls(
            row["id"], row["conversation_id"], row["sender"], row["sender_name"], row["text"],
            as_utc(row["created_at"]), row["meta"] or {},
        )

    @property
    def internal(self) -> bool:
        """Staff-only lines (a supervisor's whisper, an agent's 内部备注): never shown to the citizen."""
        return bool(self.meta.get("whisper") or self.meta.get("internal"))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "sender": self.sender,
            "sender_name": self.sender_name,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "meta": self.meta,
        }


@dataclass(frozen=True)
class ConversationView:
    id: str
    citizen_id: int
    channel: str
    channel_user_id: str
    status: str
    owner: str
    agent_id: int | None
    group: str | None
    started_at: datetime

    @classmethod
    def of(cls, row: Conversation) -> ConversationView:
        return cls(
            row.id, row.citizen_id, row.channel, row.channel_user_id, row.status, row.owner,
            row.agent_id, row.group, as_utc(row.started_at),
        )


class ConversationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        engine = sessions.kw.get("bind")
        # transcript rows are group-committed (handoff.message_writer)
        self._writer = MessageWriter(engine) if engine is not None else None

    async def open_for(self, channel: str, channel_user_id: str, citizen_id: int) -> tuple[ConversationView, bool]:
        """The citizen's open conversation on this channel, or a new one. Returns (view, created)."""
        async with self._sessions() as session, session.begin():
            row = await self._find_open(session, channel, channel_user_id)
            if row is not None:
                return ConversationView.of(row), False
            row = Conversation(
                id=str(uuid.uuid4()), citizen_id=citizen_id, channel=channel, channel_user_id=channel_user_id
            )
            session.add(row)
        return ConversationView.of(row), True

    async def find_open(self, channel: str, channel_user_id: str) -> ConversationView | None:
        async with self._sessions() as session:
            row = await self._find_open(session, channel, channel_user_id)
            return None if row is None else ConversationView.of(row)

    @staticmethod
    async def _find_open(session: AsyncSession, channel: str, channel_user_id: str) -> Conversation | None:
        result = await session.execute(
            select(Conversation)
            .where(
                Conversation.channel == channel,
                Conversation.channel_user_id == channel_user_id,
                Conversation.status == "open",
            )
            .order_by(Conversation.started_at.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def message(self, message_id: int) -> MessageView | None:
        async with self._sessions() as session:
            row = await session.get(Message, message_id)
            return None if row is None else MessageView.of(row)

    async def get(self, conversation_id: str) -> ConversationView | None:
        async with self._sessions() as session:
            row = await session.get(Conversation, conversation_id)
            return None if row is None else ConversationView.of(row)

    async def record(
        self,
        conversation_id: str,
        channel: str,
        sender: str,
        text: str,
        *,
        sender_name: str = "",
        channel_message_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> tuple[MessageView, bool]:
        """Commit one message. Returns (message, is_new); a repeated channel id returns the first copy."""
        if self._writer is not None:
            stored, is_new = await self._writer.insert({
                "conversation_id": conversation_id, "channel": channel, "channel_message_id": channel_message_id,
                "sender": sender, "sender_name": sender_name, "text": text, "meta": meta or {},
                "created_at": utcnow(),
            })
            return MessageView.from_columns(stored), is_new
        row = Message(
            conversation_id=conversation_id,
            channel=channel,
            channel_message_id=channel_message_id,
            sender=sender,
            sender_name=sender_name,
            text=text,
            meta=meta or {},
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            if channel_message_id is None:
                raise
            async with self._sessions() as session:
                existing = await session.execute(
                    select(Message).where(Message.channel == channel, Message.channel_message_id == channel_message_id)
                )
                return MessageView.of(existing.scalar_one()), False
        return MessageView.of(row), True

    async def transcript(self, conversation_id: str) -> list[MessageView]:
        async with self._sessions() as session:
            result = await session.execute(
                select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
            )
            return [MessageView.of(row) for row in result.scalars()]

    async def previous_for_citizen(self, citizen_id: int, exclude: str, limit: int = 10) -> list[ConversationView]:
        async with self._sessions() as session:
            result = await session.execute(
                select(Conversation)
                .where(Conversation.citizen_id == citizen_id, Conversation.id != exclude)
                .order_by(Conversation.started_at.desc())
                .limit(limit)
            )
            return [ConversationView.of(row) for row in result.scalars()]

    async def first_citizen_text(self, conversation_id: str) -> str:
        async with self._sessions() as session:
            result = await session.execute(
                select(Message.text)
                .where(Message.conversation_id == conversation_id, Message.sender == "citizen")
                .order_by(Message.id)
                .limit(1)
            )
            return result.scalar_one_or_none() or ""

"""Conversations and their transcripts in the database.

A message is committed here before any channel acknowledges it, and a channel's own
message id (WeChat's MsgId, the web widget's client id) makes a retry a no-op.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events import MessageJson
from core.models import Conversation, Message, utcnow
from handoff.message_writer import writer_for

FIXED_CACHE = 10_000  # conversations whose fixed fields this worker remembers
_CONVERSATIONS = Conversation.__table__
_MESSAGES = Message.__table__
_CONVERSATION_BY_ID = select(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("id"))
_TRANSCRIPT = (
    select(_MESSAGES).where(_MESSAGES.c.conversation_id == bindparam("conversation_id")).order_by(_MESSAGES.c.id)
)


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
    def of(cls, row: Message | Any) -> MessageView:
        """From an ORM object or a Core row of `messages`."""
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

    def to_json(self) -> MessageJson:
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
    def of(cls, row: Conversation | Any) -> ConversationView:
        """From an ORM object or a Core row of `conversations`."""
        return cls(
            row.id, row.citizen_id, row.channel, row.channel_user_id, row.status, row.owner,
            row.agent_id, row.group, as_utc(row.started_at),
        )


class ConversationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        engine = sessions.kw.get("bind")
        # transcript rows are group-committed (handoff.message_writer)
        self._writer = writer_for(engine) if engine is not None else None
        self._fixed: dict[str, ConversationView] = {}  # conversation id → its record (fixed fields only)

    async def open_for(self, channel: str, channel_user_id: str, citizen_id: int) -> tuple[ConversationView, bool]:
        """The citizen's open conversation on this channel, or a new one. Returns (view, created)."""
        async with self._sessions() as session, session.begin():
            row = await self._find_open(session, channel, channel_user_id)
            if row is not None:
                return self._remember(ConversationView.of(row)), False
            row = Conversation(
                id=str(uuid.uuid4()), citizen_id=citizen_id, channel=channel, channel_user_id=channel_user_id
            )
            session.add(row)
        return self._remember(ConversationView.of(row)), True

    async def find_open(self, channel: str, channel_user_id: str) -> ConversationView | None:
        async with self._sessions() as session:
            row = await self._find_open(session, channel, channel_user_id)
        return None if row is None else self._remember(ConversationView.of(row))

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
        async with self._sessions() as session:  # Core rows: no ORM objects to build on this hot read
            row = (await session.execute(_CONVERSATION_BY_ID, {"id": conversation_id})).first()
        if row is None:
            return None
        return self._remember(ConversationView.of(row))

    async def fixed(self, conversation_id: str) -> ConversationView | None:
        """The conversation's record for a caller that uses only what never changes (its id, channel,
        the citizen's channel id: to say something to the citizen): a copy read earlier in this
        worker does, so an agent's every reply or an assignment's greeting costs no SELECT."""
        cached = self._fixed.get(conversation_id)
        return cached if cached is not None else await self.get(conversation_id)

    def _remember(self, view: ConversationView) -> ConversationView:
        """Keep a record just read for `fixed` (the oldest is forgotten past FIXED_CACHE)."""
        if view.id not in self._fixed and len(self._fixed) >= FIXED_CACHE:
            self._fixed.pop(next(iter(self._fixed)))
        self._fixed[view.id] = view
        return view

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

    async def committed(self, message_id: int) -> None:
        """Wait for the commit of a row recorded under `handoff.deliver_before_commit` (at once otherwise)."""
        if self._writer is not None:
            await self._writer.committed(message_id)

    async def transcript(self, conversation_id: str) -> list[MessageView]:
        async with self._sessions() as session:
            result = await session.execute(_TRANSCRIPT, {"conversation_id": conversation_id})
            return [MessageView.of(row) for row in result]

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

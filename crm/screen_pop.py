"""The 客户信息 panel an agent sees the moment a conversation reaches them: the profile (phone
and ID masked for roles that do not need them), open tickets, earlier conversations; every
screen-pop is a `view_citizen` audit row.

Built for speed (issue #4: the screen-pop within 100 ms of the trigger): after the
conversation's row, the profile, the earlier conversations (with their first citizen line, in
one query) and the open tickets are read at once. The console writes the audit row right after
sending the frame (`audit=False` here, then `ScreenPopAudits`, which group-commits the rows of
the screen-pops that arrive together); a direct call audits itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import AuditLog, Conversation, Message
from crm.profiles import UNMASKED_ROLES, CitizenDirectory
from crm.tickets import TicketDesk, as_utc


class Conversations(Protocol):
    """Where the conversation's record is read (handoff.ConversationStore, passed in by the hub)."""

    async def get(self, conversation_id: str) -> Any: ...

__all__ = ["UNMASKED_ROLES", "ScreenPopAudits", "audit_screen_pop", "build_screen_pop"]

PREVIOUS_LIMIT = 10  # earlier conversations listed on the panel


async def build_screen_pop(
    citizens: CitizenDirectory,
    conversations: Conversations,
    conversation_id: str,
    *,
    viewer_id: int,
    viewer_role: str,
    tickets: TicketDesk | None = None,
    audit: bool = True,
) -> dict[str, Any]:
    """The panel for one conversation. `audit=False`: the caller writes the audit row itself
    (`audit_screen_pop`), after the panel is on the agent's screen — it must always write it."""
    conversation = await conversations.get(conversation_id)
    if conversation is None:
        raise KeyError(conversation_id)
    desk = tickets or TicketDesk(citizens.sessions)
    citizen, summaries, found = await asyncio.gather(
        citizens.get(conversation.citizen_id),
        previous_conversations(citizens.sessions, conversation.citizen_id, exclude=conversation_id),
        desk.open_for_citizen(conversation.citizen_id),
    )
    if audit:
        await audit_screen_pop(citizens, viewer_id, conversation.citizen_id, conversation_id)
    now = datetime.now(UTC)
    profile: dict[str, Any] = citizen.to_json(viewer_role) if citizen else {
        "id": conversation.citizen_id, "name": None, "phone": None, "id_number": None, "tags": [],
        "masked": viewer_role not in UNMASKED_ROLES,
    }
    profile.pop("identities", None)
    profile.update(channel=conversation.channel, visitor_id=conversation.channel_user_id)
    return {
        "citizen": profile,
        "previous_conversations": summaries,
        "open_tickets": [t.to_json(now) for t in found],
    }


async def audit_screen_pop(
    citizens: CitizenDirectory, viewer_id: int, citizen_id: int | str, conversation_id: str
) -> None:
    """The `view_citizen` audit row of one screen-pop."""
    await citizens.audit(viewer_id, "view_citizen", f"citizen:{citizen_id}", {"conversation": conversation_id})


class ScreenPopAudits:
    """The `view_citizen` rows of screen-pops, group-committed: the rows arriving while one
    transaction is written share the next one (a burst of assignments costs a few commits, and
    the database's single writer is held less). Each caller awaits its own row's commit."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, viewer_id: int, citizen_id: int | str, conversation_id: str) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        row = {
            "user_id": viewer_id, "action": "view_citizen", "target": f"citizen:{citizen_id}",
            "data": {"conversation": conversation_id},
        }
        self._pending.append((row, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())  # its own task: a cancelled caller stops no commit
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._sessions() as session, session.begin():
                    session.add_all([AuditLog(**row) for row, _done in batch])
            except Exception as error:
                for _row, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _row, done in batch:
                if not done.done():
                    done.set_result(None)


async def previous_conversations(
    sessions: async_sessionmaker[AsyncSession], citizen_id: int, *, exclude: str, limit: int = PREVIOUS_LIMIT
) -> list[dict[str, Any]]:
    """The citizen's earlier conversations, newest first, each with its first citizen line (one query)."""
    first_line = (
        select(Message.text)
        .where(Message.conversation_id == Conversation.id, Message.sender == "citizen")
        .order_by(Message.id)
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Conversation.id, Conversation.channel, Conversation.started_at, Conversation.status, first_line)
                .where(Conversation.citizen_id == citizen_id, Conversation.id != exclude)
                .order_by(Conversation.started_at.desc())
                .limit(limit)
            )
        ).all()
    return [
        {
            "id": conv_id,
            "channel": channel,
            "started_at": as_utc(started_at).isoformat(),  # type: ignore[union-attr]
            "status": status,
            "summary": summary or "",
        }
        for conv_id, channel, started_at, status, summary in rows
    ]

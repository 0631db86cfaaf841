"""A closed conversation as QA reads it: its lines (notes and whispers marked), ownership events,
CSAT and tickets, plus a call's timed text; and the figures inspectors and reports compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Conversation, ConversationEvent, CsatRating, Message, Ticket


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Line:
    id: int
    sender: str  # citizen / bot / agent / system
    name: str
    text: str
    at: datetime
    note: bool = False  # an agent's 内部备注
    whisper: bool = False  # a supervisor's 悄悄话

    @property
    def internal(self) -> bool:
        return self.note or self.whisper

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "sender": self.sender, "sender_name": self.name, "text": self.text,
            "created_at": self.at.isoformat(), "note": self.note, "whisper": self.whisper,
        }


@dataclass(frozen=True)
class Event:
    kind: str
    actor: str
    data: dict[str, Any]
    at: datetime


@dataclass
class Transcript:
    conversation_id: str
    channel: str
    citizen_id: int | None
    group: str | None
    started_at: datetime
    closed_at: datetime
    disposition: str | None
    lines: list[Line]
    events: list[Event] = field(default_factory=list)
    csat: int | None = None
    ticket_ids: list[int] = field(default_factory=list)
    # a call: the recording and its timed text ({start, end, speaker: agent|citizen, text}, seconds)
    recording_path: str | None = None
    recording_seconds: float | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)

    # -- who served it -------------------------------------------------------------------------
    def agent_ids(self) -> list[int]:
        found: list[int] = []
        for event in self.events:
            ids = [event.data.get("previous_agent_id")] if event.kind == "close" else []
            ids += list(event.data.get("served_by") or []) if event.kind == "close" else []
            if event.actor.startswith("agent:") and event.kind in ("assign", "transfer"):
                ids.append(event.actor.split(":", 1)[1])
            if event.data.get("to_agent_id"):
                ids.append(event.data["to_agent_id"])
            for raw in ids:
                if raw is not None and str(raw).isdigit() and int(raw) not in found:
                    found.append(int(raw))
        return found

    def agent_id(self) -> int | None:
        """The agent who closed it (who answers for it); else the last who took it."""
        for event in reversed(self.events):
            if event.kind == "close" and str(event.data.get("previous_agent_id", "")).isdigit():
                return int(event.data["previous_agent_id"])
        ids = self.agent_ids()
        return ids[-1] if ids else None

    # -- figures -------------------------------------------------------------------------------
    def _first(self, kind: str) -> Event | None:
        return next((e for e in self.events if e.kind == kind), None)

    @property
    def handed_off(self) -> bool:
        return self._first("request_human") is not None or self._first("assign") is not None

    @property
    def handoff_reason(self) -> str | None:
        event = self._first("request_human")
        return None if event is None else str(event.data.get("reason") or "") or None

    @property
    def assigned_at(self) -> datetime | None:
        event = self._first("assign")
        return None if event is None else event.at

    def wait_seconds(self) -> float | None:
        asked, assigned = self._first("request_human"), self.assigned_at
        if asked is None or assigned is None:
            return None
        return max(0.0, (assigned - asked.at).total_seconds())

    def visible(self) -> list[Line]:
        return [line for line in self.lines if not line.internal]

    def agent_lines(self) -> list[Line]:
        return [line for line in self.lines if line.sender == "agent" and not line.internal]

    def first_response_seconds(self) -> float | None:
        """From the agent taking it to the agent's first reply."""
        start = self.assigned_at
        first = self.agent_lines()[:1]
        if start is None or not first:
            return None
        return max(0.0, (first[0].at - start).total_seconds())

    def handle_seconds(self) -> float | None:
        start = self.assigned_at
        return None if start is None else max(0.0, (self.closed_at - start).total_seconds())

    def agent_gaps(self) -> list[tuple[Line, float]]:
        """Each agent reply that answered a waiting citizen, with how long the citizen had waited."""
        start = self.assigned_at
        gaps: list[tuple[Line, float]] = []
        waiting_since: datetime | None = None
        for line in self.visible():
            if start is None or line.at < start:
                continue
            if line.sender == "citizen" and waiting_since is None:
                waiting_since = line.at
            elif line.sender == "agent" and waiting_since is not None:
                gaps.append((line, (line.at - waiting_since).total_seconds()))
                waiting_since = None
        return gaps

    def longest_gap_seconds(self) -> float | None:
        gaps = [seconds for _line, seconds in self.agent_gaps()]
        return max(gaps) if gaps else None

    @property
    def transfers(self) -> int:
        return sum(1 for e in self.events if e.kind in ("transfer", "transfer_to_group"))


def _line(row: Message) -> Line:
    meta = row.meta or {}
    whisper = bool(meta.get("whisper"))
    note = bool(meta.get("note")) or (bool(meta.get("internal")) and not whisper)
    return Line(row.id, row.sender, row.sender_name, row.text, _utc(row.created_at), note=note, whisper=whisper)


async def load_transcripts(session: AsyncSession, conversations: list[Conversation]) -> list[Transcript]:
    """Several closed conversations with their lines, events, CSAT and tickets: four queries in all."""
    ids = [c.id for c in conversations]
    lines: dict[str, list[Line]] = {i: [] for i in ids}
    for row in (await session.execute(
        select(Message).where(Message.conversation_id.in_(ids)).order_by(Message.conversation_id, Message.id)
    )).scalars():
        lines[row.conversation_id].append(_line(row))
    events: dict[str, list[Event]] = {i: [] for i in ids}
    for row in (await session.execute(
        select(ConversationEvent).where(ConversationEvent.conversation_id.in_(ids))
        .order_by(ConversationEvent.conversation_id, ConversationEvent.id)
    )).scalars():
        events[row.conversation_id].append(Event(row.kind, row.actor, dict(row.data or {}), _utc(row.created_at)))
    csat = dict((await session.execute(
        select(CsatRating.conversation_id, CsatRating.score).where(CsatRating.conversation_id.in_(ids))
    )).all())
    tickets: dict[str, set[int]] = {i: set() for i in ids}
    for conversation_id, ticket_id in await session.execute(
        select(Ticket.conversation_id, Ticket.id).where(Ticket.conversation_id.in_(ids))
    ):
        tickets[conversation_id].add(int(ticket_id))
    out = []
    for c in conversations:
        for e in events[c.id]:
            if e.kind == "ticket_created" and str(e.data.get("ticket_id", "")).isdigit():
                tickets[c.id].add(int(e.data["ticket_id"]))
        out.append(Transcript(
            c.id, c.channel, c.citizen_id, c.group, _utc(c.started_at), _utc(c.closed_at or c.started_at),
            c.disposition, lines[c.id], events[c.id], csat.get(c.id), sorted(tickets[c.id]),
        ))
    return out


async def load_transcript(session: AsyncSession, conversation: Conversation) -> Transcript:
    return (await load_transcripts(session, [conversation]))[0]

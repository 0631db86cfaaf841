"""Crafted transcripts for the QA tests: lines at given seconds, ownership events, CSAT and tickets,
either in memory (rules) or written as real rows (scorer, pages)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Citizen, Conversation, ConversationEvent, CsatRating, Message, Ticket
from qa.transcript import Event, Line, Transcript

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, a Monday


@dataclass
class Script:
    """`lines`: (second, sender, text[, meta]); `events`: (second, kind, actor, data)."""

    lines: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    csat: int | None = None
    tickets: int = 0
    closed_at: float = 600.0
    channel: str = "web"
    group: str = "综合"
    start: datetime = T0


def served(agent_id: int = 1, *, assigned: float = 10.0, closed: float = 600.0, reason: str = "button") -> list[tuple]:
    return [
        (assigned - 5, "request_human", "citizen", {"reason": reason}),
        (assigned, "assign", f"agent:{agent_id}", {}),
        (closed, "close", f"agent:{agent_id}", {"previous_agent_id": agent_id, "served_by": [agent_id]}),
    ]


def transcript(script: Script, conversation_id: str | None = None) -> Transcript:
    lines = []
    for index, spec in enumerate(script.lines, start=1):
        second, sender, text, *rest = spec
        meta = rest[0] if rest else {}
        lines.append(Line(index, sender, sender, text, script.start + timedelta(seconds=second),
                          note=bool(meta.get("note")), whisper=bool(meta.get("whisper"))))
    events = [Event(kind, actor, data, script.start + timedelta(seconds=s)) for s, kind, actor, data in script.events]
    return Transcript(
        conversation_id or str(uuid.uuid4()), script.channel, 1, script.group, script.start,
        script.start + timedelta(seconds=script.closed_at), "resolved", lines, events, script.csat,
        list(range(1, script.tickets + 1)),
    )


async def store(session: AsyncSession, script: Script, *, closed: bool = True) -> str:
    """Write the script as real rows (citizen, conversation, messages, events, CSAT, tickets)."""
    citizen = Citizen(name="测试市民")
    session.add(citizen)
    await session.flush()
    conversation_id = str(uuid.uuid4())
    session.add(Conversation(
        id=conversation_id, citizen_id=citizen.id, channel=script.channel, channel_user_id=uuid.uuid4().hex,
        status="closed" if closed else "open", owner="bot", group=script.group, started_at=script.start,
        closed_at=script.start + timedelta(seconds=script.closed_at) if closed else None,
        disposition="resolved" if closed else None,
    ))
    await session.flush()
    for spec in script.lines:
        second, sender, text, *rest = spec
        meta: dict[str, Any] = dict(rest[0]) if rest else {}
        if meta.get("note") or meta.get("whisper"):
            meta["internal"] = True
        session.add(Message(conversation_id=conversation_id, channel=script.channel, sender=sender,
                            sender_name={"agent": "张敏", "citizen": "市民"}.get(sender, sender), text=text,
                            meta=meta, created_at=script.start + timedelta(seconds=second)))
    for second, kind, actor, data in script.events:
        session.add(ConversationEvent(conversation_id=conversation_id, kind=kind, actor=actor, data=data,
                                      created_at=script.start + timedelta(seconds=second)))
    if script.csat is not None:
        session.add(CsatRating(conversation_id=conversation_id, citizen_id=citizen.id, score=script.csat))
    for _ in range(script.tickets):
        session.add(Ticket(citizen_id=citizen.id, conversation_id=conversation_id, title="工单", body="内容",
                           due_at=script.start + timedelta(days=1)))
    await session.flush()
    return conversation_id

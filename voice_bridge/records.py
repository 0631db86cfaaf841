"""Call records (通话记录) and agents' extensions in the database; recordings on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models.base import utcnow
from core.models.voice import AgentExtension, CallRecord

OUTCOMES = {
    "active": "通话中",
    "bot": "智能应答",
    "answered": "人工接听",
    "abandoned": "排队放弃",
    "no_answer": "未接通",
    "failed": "呼叫失败",
}

_PUBLIC = (
    "id", "direction", "caller", "callee", "conversation_id", "citizen_id", "agent_ids", "agent_id", "ivr_path",
    "group", "outcome", "disposition", "started_at", "queued_at", "answered_at", "ended_at", "wait_seconds",
    "talk_seconds", "recording_seconds", "segments", "memo",
)


def as_json(row: CallRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _PUBLIC:
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    out["outcome_label"] = OUTCOMES.get(row.outcome, row.outcome)
    out["has_recording"] = bool(row.recording_path)
    return out


@dataclass(frozen=True)
class CallQuery:
    number: str = ""
    agent_id: int | None = None
    outcome: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None
    limit: int = 100
    offset: int = 0


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _unlink(path: str) -> None:
    Path(path).unlink(missing_ok=True)


class CallRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], recordings_dir: Path) -> None:
        self.sessions = sessions
        self.recordings_dir = recordings_dir

    async def create(self, call_id: str, direction: str, caller: str, callee: str, **fields: Any) -> None:
        async with self.sessions() as session, session.begin():
            session.add(CallRecord(id=call_id, direction=direction, caller=caller, callee=callee, **fields))

    async def update(self, call_id: str, **fields: Any) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(CallRecord, call_id)
            if row is not None:
                for key, value in fields.items():
                    setattr(row, key, value)

    async def get(self, call_id: str) -> CallRecord | None:
        async with self.sessions() as session:
            return await session.get(CallRecord, call_id)

    async def by_conversation(self, conversation_id: str) -> CallRecord | None:
        async with self.sessions() as session:
            found = await session.execute(
                select(CallRecord).where(CallRecord.conversation_id == conversation_id).limit(1)
            )
            return found.scalar_one_or_none()

    def _filtered(self, query: CallQuery) -> Select[tuple[CallRecord]]:
        stmt = select(CallRecord)
        if query.number:
            like = f"%{query.number}%"
            stmt = stmt.where(or_(CallRecord.caller.like(like), CallRecord.callee.like(like)))
        if query.agent_id is not None:
            stmt = stmt.where(CallRecord.agent_id == query.agent_id)
        if query.outcome:
            stmt = stmt.where(CallRecord.outcome == query.outcome)
        if query.date_from is not None:
            stmt = stmt.where(CallRecord.started_at >= _aware(query.date_from))
        if query.date_to is not None:
            stmt = stmt.where(CallRecord.started_at < _aware(query.date_to))
        return stmt

    async def search(self, query: CallQuery) -> list[CallRecord]:
        stmt = self._filtered(query).order_by(CallRecord.started_at.desc()).limit(query.limit).offset(query.offset)
        async with self.sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def extension(self, user_id: int) -> str | None:
        async with self.sessions() as session:
            row = await session.get(AgentExtension, user_id)
            return row.sip_uri if row else None

    async def set_extension(self, user_id: int, sip_uri: str) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(AgentExtension, user_id)
            if row is None:
                session.add(AgentExtension(user_id=user_id, sip_uri=sip_uri))
            else:
                row.sip_uri, row.updated_at = sip_uri, utcnow()

    def recording_path(self, call_id: str, when: datetime) -> Path:
        return self.recordings_dir / when.strftime("%Y/%m/%d") / f"{call_id}.wav"

    def write_recording(self, call_id: str, when: datetime, wav: bytes) -> Path:
        path = self.recording_path(call_id, when)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(wav)
        os.replace(tmp, path)
        return path

    async def purge_recordings(self, retention_days: int, now: datetime | None = None) -> int:
        """Delete recordings older than the retention setting; the call record stays (without its file)."""
        cutoff = (now or utcnow()) - timedelta(days=retention_days)
        purged = 0
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(CallRecord).where(CallRecord.started_at < cutoff, CallRecord.recording_path.is_not(None))
                )
            ).scalars()
            for row in rows:
                _unlink(str(row.recording_path))
                row.recording_path = None
                purged += 1
        return purged

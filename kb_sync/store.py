"""Knowledge-base entries and branches in the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.models import KbBranch, KbEntry, utcnow

STATUSES = ("draft", "published", "archived")


@dataclass(frozen=True)
class EntryView:
    id: str
    branch: str
    question: str
    similar: list[str]
    answer: str
    keywords: list[str]
    status: str
    valid_from: datetime | None
    valid_to: datetime | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "branch": self.branch,
            "question": self.question,
            "similar": self.similar,
            "answer": self.answer,
            "keywords": self.keywords,
            "status": self.status,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "updated_at": self.updated_at.isoformat(),
        }

    def is_live(self, now: datetime) -> bool:
        """Published and inside its validity window."""
        if self.status != "published":
            return False
        if self.valid_from and _aware(self.valid_from) > now:
            return False
        return not (self.valid_to and _aware(self.valid_to) <= now)


def _aware(moment: datetime) -> datetime:

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _view(entry: KbEntry, branch: str) -> EntryView:
    return EntryView(
        entry.id, branch, entry.question, list(entry.similar or []), entry.answer, list(entry.keywords or []),
        entry.status, entry.valid_from, entry.valid_to, entry.updated_at,
    )


class KbStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def branch_id(self, session: AsyncSession, name: str) -> int:
        found = await session.execute(select(KbBranch.id).where(KbBranch.name == name, KbBranch.parent_id.is_(None)))
        branch_id = found.scalar_one_or_none()
        if branch_id is None:
            branch = KbBranch(name=name)
            session.add(branch)
            await session.flush()
            branch_id = branch.id
        return branch_id

    async def count(self) -> int:
        async with self._sessions() as session:
            return int((await session.execute(select(func.count(KbEntry.id)))).scalar_one())

    async def upsert(self, entries: list[dict[str, Any]], *, status: str, editor: str) -> int:
        """Write entries in one transaction (all or nothing)."""
        async with self._sessions() as session, session.begin():
            for item in entries:
                branch_id = await self.branch_id(session, item["branch"])
                row = await session.get(KbEntry, item["id"])
                if row is None:
                    row = KbEntry(id=item["id"])
                    session.add(row)
                row.branch_id = branch_id
                row.question = item["question"]
                row.similar = list(item.get("similar") or [])
                row.answer = item["answer"]
                row.keywords = list(item.get("keywords") or [])
                row.status = status
                row.updated_at = utcnow()
                row.updated_by = editor
        return len(entries)

    async def set_status(self, entry_id: str, status: str, editor: str) -> None:
        if status not in STATUSES:
            raise ValueError(status)
        async with self._sessions() as session, session.begin():
            row = await session.get(KbEntry, entry_id)
            if row is None:
                raise KeyError(entry_id)
            row.status = status
            row.updated_at = utcnow()
            row.updated_by = editor

    async def get(self, entry_id: str) -> EntryView | None:
        async with self._sessions() as session:
            result = await session.execute(
                select(KbEntry, KbBranch.name).join(KbBranch, KbEntry.branch_id == KbBranch.id).where(KbEntry.id == entry_id)
            )
            row = result.first()
            return None if row is None else _view(row[0], row[1])

    async def search(self, text: str = "", status: str = "", limit: int = 500) -> list[EntryView]:
        query = select(KbEntry, KbBranch.name).join(KbBranch, KbEntry.branch_id == KbBranch.id)
        if status:
            query = query.where(KbEntry.status == status)
        if text:
            like = f"%{text}%"
            query = query.where(or_(KbEntry.question.like(like), KbEntry.answer.like(like), KbBranch.name.like(like)))
        async with self._sessions() as session:
            result = await session.execute(query.order_by(KbEntry.id).limit(limit))
            return [_view(entry, branch) for entry, branch in result.all()]

    async def published(self) -> list[EntryView]:
        async with self._sessions() as session:
            result = await session.execute(
                select(KbEntry, KbBranch.name)
                .join(KbBranch, KbEntry.branch_id == KbBranch.id)
                .where(KbEntry.status == "published")
                .order_by(KbEntry.id)
            )
            return [_view(entry, branch) for entry, branch in result.all()]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Entries in the project's jsonl exchange format ({"id","branch","question","similar","answer"})."""
    items = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            for key in ("id", "branch", "question", "answer"):
                if not item.get(key):
                    raise ValueError(f"{path}:{number}: missing {key}")
            items.append(item)
    return items

"""Knowledge-base entries and branches in the database, with a version row for every save.

Every method that changes an entry writes a ``KbEntryVersion`` (who, when, the full
snapshot and a diff in Chinese field names) in the same transaction, and returns whether
published content changed, so the caller can tell every worker (``AnswerService.notify_changed``).
Errors a person can act on are ``KbError`` with a Chinese reason and an HTTP status.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import LIKE_ESCAPE, contains_pattern
from core.models import KbBranch, KbEntry, KbEntryVersion, utcnow
from core.models.base import as_utc
from kb_sync.branches import MAX_BRANCH_NAME, PATH_SEP, BranchInfo, BranchTree, check_branch_name, split_path
from kb_sync.rules import (
    LOCAL_TZ,
    MAX_ANSWER,
    MAX_QUESTION,
    MAX_SHORT_ANSWER,
    STATUS_LABELS,
    STATUSES,
    KbError,
    check_window,
    clean_entry,
    parse_moment,
    question_key,
    split_keywords,
)
from kb_sync.sanitize import sanitize_html
from kb_sync.versions import STATUS_ACTIONS, diff_snapshots, iso_utc, snapshot, version_json

# The entry rules, the branch tree and the versions have their own modules (kb_sync.rules,
# kb_sync.branches, kb_sync.versions); the names callers import from here stay importable.
__all__ = [
    "LOCAL_TZ", "MAX_ANSWER", "MAX_BRANCH_NAME", "MAX_QUESTION", "MAX_SHORT_ANSWER", "PATH_SEP", "STATUSES",
    "STATUS_LABELS", "BranchInfo", "Change", "EntryView", "KbError", "KbStore", "SearchFilters", "clean_entry",
    "diff_snapshots", "parse_moment", "question_key", "read_jsonl", "split_keywords", "split_path",
]


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
    # added for the KB editor (defaults keep older callers working)
    short_answer: str = ""
    branch_id: int = 0
    branch_path: str = ""
    updated_by: str = ""
    created_at: datetime | None = None
    created_by: str = ""
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "branch": self.branch,
            "branch_id": self.branch_id,
            "branch_path": self.branch_path or self.branch,
            "question": self.question,
            "similar": self.similar,
            "answer": self.answer,
            "short_answer": self.short_answer,
            "keywords": self.keywords,
            "status": self.status,
            "valid_from": iso_utc(self.valid_from),
            "valid_to": iso_utc(self.valid_to),
            "updated_at": iso_utc(self.updated_at),
            "updated_by": self.updated_by,
            "created_at": iso_utc(self.created_at),
            "created_by": self.created_by,
            "version": self.version,
            "live": self.is_live(datetime.now(UTC)),
        }

    def is_live(self, now: datetime) -> bool:
        """Published and inside its validity window."""
        if self.status != "published":
            return False
        if self.valid_from and as_utc(self.valid_from) > now:
            return False
        return not (self.valid_to and as_utc(self.valid_to) <= now)


@dataclass(frozen=True)
class Change:
    """The outcome of a save: the entries touched and whether the bot's answers may change."""

    ids: list[str]
    published_changed: bool
    views: list[EntryView] = field(default_factory=list)


@dataclass(frozen=True)
class SearchFilters:
    text: str = ""
    branch_id: int | None = None
    status: str = ""
    editor: str = ""
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    limit: int = 50
    offset: int = 0


def _view_in(entry: KbEntry, tree: BranchTree) -> EntryView:
    info = tree.by_id.get(entry.branch_id)
    branch, path = (info.name, info.path) if info else ("", "")
    return EntryView(
        entry.id, branch, entry.question, list(entry.similar or []), entry.answer, list(entry.keywords or []),
        entry.status, entry.valid_from, entry.valid_to, entry.updated_at,
        short_answer=entry.short_answer or "", branch_id=entry.branch_id, branch_path=path or branch,
        updated_by=entry.updated_by or "", created_at=entry.created_at, created_by=entry.created_by or "",
        version=entry.version or 0,
    )


def _json_like(text: str) -> str:
    """A LIKE pattern that matches text inside a JSON column as stored (json.dumps escapes non-ASCII)."""
    return contains_pattern(json.dumps(text)[1:-1])


class KbStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions  # also for the KB's other tables (unanswered questions, feedback)

    # ------------------------------------------------------------------ branches

    async def branch_id(self, session: AsyncSession, name: str) -> int:
        """The id of the top-level branch with exactly this name, created when missing (jsonl loading)."""
        return await self._child(session, name, None)

    async def branch_path_id(self, session: AsyncSession, path: str) -> int:
        """The id of a branch by path ("户籍/迁移"), creating the missing parts."""
        parent: int | None = None
        for part in split_path(path):
            parent = await self._child(session, part, parent)
        if parent is None:
            raise KbError(400, "知识分类不能为空。", "no_branch")
        return parent

    async def _child(self, session: AsyncSession, name: str, parent_id: int | None) -> int:
        """The branch called ``name`` under ``parent_id`` (None: top level), created when missing."""
        condition = KbBranch.parent_id.is_(None) if parent_id is None else KbBranch.parent_id == parent_id
        found = await session.execute(select(KbBranch.id).where(KbBranch.name == name, condition))
        branch_id = found.scalars().first()
        if branch_id is None:
            branch = KbBranch(name=name, parent_id=parent_id)
            session.add(branch)
            await session.flush()
            branch_id = branch.id
        return branch_id

    async def tree(self, session: AsyncSession | None = None, with_counts: bool = False) -> BranchTree:
        async def load(s: AsyncSession) -> BranchTree:
            rows = (await s.execute(select(KbBranch.id, KbBranch.name, KbBranch.parent_id))).all()
            counts: dict[int, int] = {}
            if with_counts:
                found = await s.execute(select(KbEntry.branch_id, func.count(KbEntry.id)).group_by(KbEntry.branch_id))
                counts = {int(b): int(n) for b, n in found.all()}
            return BranchTree([(int(i), n, p) for i, n, p in rows], counts)

        if session is not None:
            return await load(session)
        async with self.sessions() as fresh:
            return await load(fresh)

    async def branches(self) -> list[BranchInfo]:
        return (await self.tree(with_counts=True)).ordered()

    async def _sibling_exists(
        self, session: AsyncSession, name: str, parent_id: int | None, exclude: int | None
    ) -> bool:
        condition = KbBranch.parent_id.is_(None) if parent_id is None else KbBranch.parent_id == parent_id
        query = select(KbBranch.id).where(KbBranch.name == name, condition)
        if exclude is not None:
            query = query.where(KbBranch.id != exclude)
        return (await session.execute(query)).first() is not None

    async def create_branch(self, name: Any, parent_id: int | None) -> BranchInfo:
        name = check_branch_name(name)
        async with self.sessions() as session, session.begin():
            if parent_id is not None and await session.get(KbBranch, parent_id) is None:
                raise KbError(404, "上级知识分类不存在。", "no_branch")
            if await self._sibling_exists(session, name, parent_id, None):
                raise KbError(409, f"同一级已有名为“{name}”的知识分类。", "duplicate")
            branch = KbBranch(name=name, parent_id=parent_id)
            session.add(branch)
            await session.flush()
            tree = await self.tree(session)
            return tree.by_id[branch.id]

    async def rename_branch(self, branch_id: int, name: Any) -> tuple[BranchInfo, bool]:
        """Returns the branch and whether it holds published entries (their branch name changed)."""
        name = check_branch_name(name)
        async with self.sessions() as session, session.begin():
            branch = await self._branch(session, branch_id)
            if await self._sibling_exists(session, name, branch.parent_id, branch_id):
                raise KbError(409, f"同一级已有名为“{name}”的知识分类。", "duplicate")
            branch.name = name
            return await self._changed_branch(session, branch_id)

    async def move_branch(self, branch_id: int, parent_id: int | None) -> tuple[BranchInfo, bool]:
        async with self.sessions() as session, session.begin():
            branch = await self._branch(session, branch_id)
            tree = await self.tree(session)
            if parent_id is not None:
                if parent_id not in tree.by_id:
                    raise KbError(404, "目标上级知识分类不存在。", "no_branch")
                if parent_id in tree.descendants(branch_id):
                    raise KbError(409, "不能把知识分类移动到它自己或它的下级分类中。", "cycle")
            if await self._sibling_exists(session, branch.name, parent_id, branch_id):
                raise KbError(409, f"目标位置已有名为“{branch.name}”的知识分类。", "duplicate")
            branch.parent_id = parent_id
            return await self._changed_branch(session, branch_id)

    async def delete_branch(self, branch_id: int) -> None:
        async with self.sessions() as session, session.begin():
            branch = await self._branch(session, branch_id)
            entries = (await session.execute(
                select(func.count(KbEntry.id)).where(KbEntry.branch_id == branch_id))).scalar_one()
            children = (await session.execute(
                select(func.count(KbBranch.id)).where(KbBranch.parent_id == branch_id))).scalar_one()
            if entries or children:
                parts = []
                if entries:
                    parts.append(f"{entries} 个知识条目")
                if children:
                    parts.append(f"{children} 个下级分类")
                raise KbError(409, f"知识分类“{branch.name}”下还有{'和'.join(parts)}，不能删除。请先移走或删除它们。",
                              "not_empty")
            await session.delete(branch)

    async def _branch(self, session: AsyncSession, branch_id: int) -> KbBranch:
        branch = await session.get(KbBranch, branch_id)
        if branch is None:
            raise KbError(404, "知识分类不存在。", "no_branch")
        return branch

    async def _changed_branch(self, session: AsyncSession, branch_id: int) -> tuple[BranchInfo, bool]:
        """A renamed or moved branch as it is now, and whether it holds published entries (under a new path)."""
        await session.flush()
        tree = await self.tree(session)
        found = await session.execute(select(KbEntry.id).where(
            KbEntry.branch_id.in_(tree.descendants(branch_id)), KbEntry.status == "published").limit(1))
        return tree.by_id[branch_id], found.first() is not None

    # ------------------------------------------------------------------ entries (legacy bulk path)

    async def count(self) -> int:
        async with self.sessions() as session:
            return int((await session.execute(select(func.count(KbEntry.id)))).scalar_one())

    async def upsert(self, entries: list[dict[str, Any]], *, status: str, editor: str) -> int:
        """Write entries in one transaction (all or nothing); each gets a version row."""
        async with self.sessions() as session, session.begin():
            for item in entries:
                branch_id = await self.branch_id(session, item["branch"])
                row = await session.get(KbEntry, item["id"])
                before = None
                if row is None:
                    row = KbEntry(id=item["id"], created_by=editor, version=0, short_answer="")
                    session.add(row)
                else:
                    before = snapshot(row, branch_path="")
                row.branch_id = branch_id
                row.question = item["question"]
                row.similar = list(item.get("similar") or [])
                row.answer = sanitize_html(item["answer"])
                row.short_answer = item.get("short_answer") or ""
                row.keywords = list(item.get("keywords") or [])
                row.status = status
                row.updated_at = utcnow()
                row.updated_by = editor
                self._add_version(session, row, "import" if before is None else "edit", editor, before,
                                  snapshot(row, branch_path=item["branch"]))
        return len(entries)

    def _add_version(
        self, session: AsyncSession, row: KbEntry, action: str, editor: str,
        before: dict[str, Any] | None, after: dict[str, Any], note: str = "",
    ) -> KbEntryVersion:
        row.version = (row.version or 0) + 1
        version = KbEntryVersion(
            entry_id=row.id, number=row.version, action=action, editor=editor, snapshot=after,
            diff=diff_snapshots(before, after), note=note[:200], created_at=utcnow(),
        )
        session.add(version)
        return version

    # ------------------------------------------------------------------ entries (editor)

    async def _check_unique(self, session: AsyncSession, question: str, exclude: str | None) -> None:
        key = question_key(question)
        # candidates by a cheap prefix filter, exact check in Python (NFKC/case/blanks)
        query = select(KbEntry.id, KbEntry.question)
        if exclude is not None:
            query = query.where(KbEntry.id != exclude)
        like = contains_pattern(question.strip()[:1])
        rows = (await session.execute(query.where(KbEntry.question.like(like, escape=LIKE_ESCAPE)))).all()
        for other_id, other_q in rows:
            if question_key(other_q) == key:
                raise KbError(409, f"标准问题“{question}”已存在（条目 {other_id}）。", "duplicate_question")

    async def _branch_for(self, session: AsyncSession, data: dict[str, Any]) -> int:
        if data.get("branch_id") not in (None, ""):
            try:
                branch_id = int(data["branch_id"])
            except (TypeError, ValueError):
                raise KbError(400, "知识分类不正确。", "bad_branch") from None
            if await session.get(KbBranch, branch_id) is None:
                raise KbError(404, "知识分类不存在。", "no_branch")
            return branch_id
        raise KbError(400, "请选择知识分类。", "no_branch")

    async def create_entry(self, data: dict[str, Any], editor: str) -> Change:
        values = clean_entry(data)
        status = data.get("status") or "draft"
        if status not in STATUSES:
            raise KbError(400, "状态只能是草稿、已发布或已归档。", "bad_status")
        check_window(values)
        async with self.sessions() as session, session.begin():
            branch_id = await self._branch_for(session, data)
            await self._check_unique(session, values["question"], None)
            now = utcnow()
            row = KbEntry(id=str(uuid.uuid4()), branch_id=branch_id, status=status, created_at=now, updated_at=now,
                          created_by=editor, updated_by=editor, version=0, **values)
            session.add(row)
            await session.flush()
            tree = await self.tree(session)
            self._add_version(session, row, "create", editor, None, snapshot(row, tree))
            view = _view_in(row, tree)
        return Change([row.id], status == "published", [view])

    async def _locked(self, session: AsyncSession, entry_id: str, expected_version: int | None) -> KbEntry:
        row = await session.get(KbEntry, entry_id, with_for_update=True)
        if row is None:
            raise KbError(404, "知识条目不存在或已被删除。", "no_entry")
        if expected_version is not None and int(expected_version) != (row.version or 0):
            raise KbError(409, "该知识条目已被他人修改，请刷新后再编辑。", "stale")
        return row

    async def update_entry(self, entry_id: str, data: dict[str, Any], editor: str,
                           expected_version: int | None = None) -> Change:
        values = clean_entry(data, partial=True)
        async with self.sessions() as session, session.begin():
            row = await self._locked(session, entry_id, expected_version)
            tree = await self.tree(session)
            before = snapshot(row, tree)
            if "branch_id" in data:
                values["branch_id"] = await self._branch_for(session, data)
            merged = {"valid_from": row.valid_from, "valid_to": row.valid_to, **values}
            check_window(merged)
            if "question" in values and question_key(values["question"]) != question_key(row.question):
                await self._check_unique(session, values["question"], entry_id)
            for key, value in values.items():
                setattr(row, key, value)
            after = snapshot(row, tree)
            if diff_snapshots(before, after):
                self._saved(session, row, tree, "move" if set(values) == {"branch_id"} else "edit", editor, before)
            view = _view_in(row, tree)
        return Change([entry_id], row.status == "published" and before != after, [view])

    async def set_status(self, entry_id: str, status: str, editor: str) -> Change:
        return await self.set_status_many([entry_id], status, editor)

    async def set_status_many(self, entry_ids: Sequence[str], status: str, editor: str) -> Change:
        """Publish / 转草稿 / archive several entries at once (all or nothing)."""
        if status not in STATUSES:
            raise KbError(400, "状态只能是草稿、已发布或已归档。", "bad_status")
        ids = _unique_ids(entry_ids)
        changed_published = False
        async with self.sessions() as session, session.begin():
            tree, rows = await self._selected(session, ids)
            for row in rows:
                if row.status == status:
                    continue
                before = snapshot(row, tree)
                changed_published = changed_published or "published" in (row.status, status)
                row.status = status
                self._saved(session, row, tree, STATUS_ACTIONS[status], editor, before)
        return Change(ids, changed_published)

    async def move_entries(self, entry_ids: Sequence[str], branch_id: int, editor: str) -> Change:
        ids = _unique_ids(entry_ids)
        changed_published = False
        async with self.sessions() as session, session.begin():
            if await session.get(KbBranch, branch_id) is None:
                raise KbError(404, "目标知识分类不存在。", "no_branch")
            tree, rows = await self._selected(session, ids)
            for row in rows:
                if row.branch_id == branch_id:
                    continue
                before = snapshot(row, tree)
                row.branch_id = branch_id
                changed_published = changed_published or row.status == "published"
                self._saved(session, row, tree, "move", editor, before)
        return Change(ids, changed_published)

    async def delete_entries(self, entry_ids: Sequence[str], editor: str) -> Change:
        """Delete entries; their history stays, closed by a "删除" version."""
        ids = _unique_ids(entry_ids)
        changed_published = False
        async with self.sessions() as session, session.begin():
            tree, rows = await self._selected(session, ids)
            for row in rows:
                before = snapshot(row, tree)
                changed_published = changed_published or row.status == "published"
                self._add_version(session, row, "delete", editor, None, before, note="条目已删除")
            await session.flush()
            await session.execute(delete(KbEntry).where(KbEntry.id.in_(ids)))
        return Change(ids, changed_published)

    async def rollback(self, entry_id: str, number: int, editor: str) -> Change:
        """Restore the content of version ``number`` (the status stays as it is now) as a new version."""
        async with self.sessions() as session, session.begin():
            row = await self._locked(session, entry_id, None)
            found = await session.execute(select(KbEntryVersion).where(
                KbEntryVersion.entry_id == entry_id, KbEntryVersion.number == int(number)))
            version = found.scalar_one_or_none()
            if version is None:
                raise KbError(404, f"版本 {number} 不存在。", "no_version")
            tree = await self.tree(session)
            old = version.snapshot
            branch_id = old.get("branch_id")
            if branch_id not in tree.by_id:
                branch_id = tree.by_path.get(old.get("branch") or "")
            if branch_id is None:
                reason = f"版本 {number} 所在的知识分类“{old.get('branch')}”已被删除，无法回滚。"
                raise KbError(409, reason, "no_branch")
            if question_key(old["question"]) != question_key(row.question):
                await self._check_unique(session, old["question"], entry_id)
            before = snapshot(row, tree)
            row.branch_id = branch_id
            row.question = old["question"]
            row.similar = list(old.get("similar") or [])
            row.answer = old["answer"]
            row.short_answer = old.get("short_answer") or ""
            row.keywords = list(old.get("keywords") or [])
            row.valid_from = parse_moment(old.get("valid_from"), "生效时间")
            row.valid_to = parse_moment(old.get("valid_to"), "失效时间")
            self._saved(session, row, tree, "rollback", editor, before, note=f"回滚到版本 {number}")
            view = _view_in(row, tree)
        return Change([entry_id], row.status == "published", [view])

    async def versions(self, entry_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            found = await session.execute(select(KbEntryVersion).where(KbEntryVersion.entry_id == entry_id)
                                          .order_by(KbEntryVersion.number.desc()))
            return [version_json(v) for v in found.scalars().all()]

    async def add_similar(self, entry_id: str, texts: Sequence[str], editor: str) -> Change:
        async with self.sessions() as session:
            row = await session.get(KbEntry, entry_id)
            if row is None:
                raise KbError(404, "知识条目不存在或已被删除。", "no_entry")
            existing = list(row.similar or [])
        merged = existing + [t.strip() for t in texts if t.strip() and t.strip() not in existing
                             and question_key(t) != question_key(row.question)]
        return await self.update_entry(entry_id, {"similar": merged}, editor)

    async def _selected(self, session: AsyncSession, ids: list[str]) -> tuple[BranchTree, list[KbEntry]]:
        """The branch tree and the selected entries, locked (all must exist)."""
        return await self.tree(session), await self._rows(session, ids)

    def _saved(
        self, session: AsyncSession, row: KbEntry, tree: BranchTree, action: str, editor: str,
        before: dict[str, Any], note: str = "",
    ) -> None:
        """Stamp an edited entry and record its new version."""
        row.updated_at = utcnow()
        row.updated_by = editor
        self._add_version(session, row, action, editor, before, snapshot(row, tree), note)

    async def _rows(self, session: AsyncSession, ids: list[str]) -> list[KbEntry]:
        if not ids:
            raise KbError(400, "请至少选择一个知识条目。", "no_selection")
        found = await session.execute(select(KbEntry).where(KbEntry.id.in_(ids)).with_for_update())
        rows = list(found.scalars().all())
        if len(rows) != len(ids):
            missing = len(ids) - len(rows)
            raise KbError(404, f"有 {missing} 个知识条目不存在或已被删除，请刷新后重试。", "no_entry")
        return rows

    # ------------------------------------------------------------------ reading

    async def get(self, entry_id: str) -> EntryView | None:
        async with self.sessions() as session:
            row = await session.get(KbEntry, entry_id)
            if row is None:
                return None
            tree = await self.tree(session)
            return _view_in(row, tree)

    async def search(self, text: str = "", status: str = "", limit: int = 500) -> list[EntryView]:
        items, _total = await self.find(SearchFilters(text=text, status=status, limit=limit))
        return items

    async def find(self, filters: SearchFilters) -> tuple[list[EntryView], int]:
        async with self.sessions() as session:
            tree = await self.tree(session)
            query = select(KbEntry)
            if filters.status:
                query = query.where(KbEntry.status == filters.status)
            if filters.branch_id is not None:
                query = query.where(KbEntry.branch_id.in_(tree.descendants(filters.branch_id)))
            if filters.editor:
                query = query.where(KbEntry.updated_by == filters.editor)
            if filters.updated_from is not None:
                query = query.where(KbEntry.updated_at >= filters.updated_from)
            if filters.updated_to is not None:
                query = query.where(KbEntry.updated_at < filters.updated_to)
            text = filters.text.strip()
            if text:
                like = contains_pattern(text)
                query = query.where(or_(
                    KbEntry.question.like(like, escape=LIKE_ESCAPE), KbEntry.answer.like(like, escape=LIKE_ESCAPE),
                    KbEntry.id == text,
                    cast(KbEntry.similar, String).like(_json_like(text), escape=LIKE_ESCAPE),
                    cast(KbEntry.keywords, String).like(_json_like(text), escape=LIKE_ESCAPE),
                ))
            total = int((await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one())
            found = await session.execute(
                query.order_by(KbEntry.updated_at.desc(), KbEntry.id).limit(filters.limit).offset(filters.offset))
            return [_view_in(row, tree) for row in found.scalars().all()], total

    async def editors(self) -> list[str]:
        async with self.sessions() as session:
            found = await session.execute(select(KbEntry.updated_by).distinct())
            return sorted(e for e in found.scalars().all() if e)

    async def all_entries(self, branch_id: int | None = None, status: str = "") -> list[EntryView]:
        async with self.sessions() as session:
            tree = await self.tree(session)
            query = select(KbEntry)
            if status:
                query = query.where(KbEntry.status == status)
            if branch_id is not None:
                query = query.where(KbEntry.branch_id.in_(tree.descendants(branch_id)))
            found = await session.execute(query.order_by(KbEntry.created_at, KbEntry.id))
            return [_view_in(row, tree) for row in found.scalars().all()]

    async def published(self) -> list[EntryView]:
        """The published entries (live or not: AnswerService checks the window), ordered by id."""
        return sorted(await self.all_entries(status="published"), key=lambda e: e.id)


def _unique_ids(entry_ids: Sequence[str]) -> list[str]:
    if not isinstance(entry_ids, list | tuple) or not all(isinstance(i, str) for i in entry_ids):
        raise KbError(400, "条目列表格式不正确。", "bad_field")
    if len(entry_ids) > 5000:
        raise KbError(400, "一次最多操作 5000 个知识条目。", "too_many")
    return list(dict.fromkeys(entry_ids))


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

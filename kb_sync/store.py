"""Knowledge-base entries and branches in the database, with a version row for every save.

Every method that changes an entry writes a ``KbEntryVersion`` (who, when, the full
snapshot and a diff in Chinese field names) in the same transaction, and returns whether
published content changed, so the caller can tell every worker (``AnswerService.notify_changed``).
Errors a person can act on are ``KbError`` with a Chinese reason and an HTTP status.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import LIKE_ESCAPE, contains_pattern
from core.errors import Refusal
from core.models import KbBranch, KbEntry, KbEntryVersion, utcnow
from kb_sync.sanitize import sanitize_html

STATUSES = ("draft", "published", "archived")
STATUS_LABELS = {"draft": "草稿", "published": "已发布", "archived": "已归档"}
FIELD_LABELS = {
    "branch": "知识分类",
    "question": "标准问题",
    "similar": "相似问法",
    "answer": "答案",
    "short_answer": "简短答案",
    "keywords": "关键词",
    "valid_from": "生效时间",
    "valid_to": "失效时间",
    "status": "状态",
}
ACTION_LABELS = {
    "create": "新建",
    "edit": "编辑",
    "publish": "发布",
    "draft": "转草稿",
    "archive": "归档",
    "move": "移动",
    "rollback": "回滚",
    "import": "导入",
    "delete": "删除",
}
STATUS_ACTIONS = {"published": "publish", "draft": "draft", "archived": "archive"}
CONTENT_FIELDS = ("branch_id", "question", "similar", "answer", "short_answer", "keywords", "valid_from", "valid_to")

MAX_QUESTION = 500
MAX_ANSWER = 5000
MAX_SHORT_ANSWER = 500
MAX_SIMILAR = 200
MAX_KEYWORDS = 50
MAX_BRANCH_NAME = 64
PATH_SEP = "/"
# Editors think in Beijing time; files and date filters use it (storage is UTC).
LOCAL_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class KbError(Refusal):
    """A refusal a person can act on: HTTP status + Chinese reason (+ machine code)."""


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
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
            "updated_at": _iso(self.updated_at),
            "updated_by": self.updated_by,
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "version": self.version,
            "live": self.is_live(datetime.now(UTC)),
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


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).astimezone(UTC).isoformat() if moment else None


def question_key(text: str) -> str:
    """Two standard questions are duplicates when equal after NFKC, case and blanks."""
    return "".join(unicodedata.normalize("NFKC", text or "").lower().split())


@dataclass
class BranchInfo:
    id: int
    name: str
    parent_id: int | None
    path: str = ""
    entry_count: int = 0
    children: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "parent_id": self.parent_id, "path": self.path,
                "entry_count": self.entry_count}


class BranchTree:
    """All branches with their paths ("居住证/签注"), built from one query."""

    def __init__(self, rows: Iterable[tuple[int, str, int | None]], counts: dict[int, int] | None = None) -> None:
        self.by_id: dict[int, BranchInfo] = {i: BranchInfo(i, n, p) for i, n, p in rows}
        for info in self.by_id.values():
            if info.parent_id in self.by_id:
                self.by_id[info.parent_id].children.append(info.id)
            info.entry_count = (counts or {}).get(info.id, 0)
        for info in self.by_id.values():
            info.path = self._path(info.id)
        self.by_path = {info.path: info.id for info in self.by_id.values()}

    def _path(self, branch_id: int) -> str:
        names: list[str] = []
        seen: set[int] = set()
        current: int | None = branch_id
        while current is not None and current in self.by_id and current not in seen:
            seen.add(current)
            names.append(self.by_id[current].name)
            current = self.by_id[current].parent_id
        return PATH_SEP.join(reversed(names))

    def descendants(self, branch_id: int) -> list[int]:
        out, stack = [], [branch_id]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(self.by_id[current].children if current in self.by_id else [])
        return out

    def ordered(self) -> list[BranchInfo]:
        return sorted(self.by_id.values(), key=lambda b: b.path)


def split_path(path: str) -> list[str]:
    return [part.strip() for part in (path or "").replace("／", PATH_SEP).replace("\\", PATH_SEP).split(PATH_SEP)
            if part.strip()]


def check_branch_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise KbError(400, "知识分类名称不能为空。", "bad_name")
    name = name.strip()
    if len(name) > MAX_BRANCH_NAME:
        raise KbError(400, f"知识分类名称不能超过 {MAX_BRANCH_NAME} 个字。", "bad_name")
    if PATH_SEP in name or "\\" in name or "／" in name:
        raise KbError(400, "知识分类名称不能包含“/”。", "bad_name")
    return name


# ---------------------------------------------------------------------------- entry data


_LOOSE_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$")


def parse_moment(value: Any, label: str) -> datetime | None:
    """None, a datetime, or a string: ISO 8601 with an offset (UTC stored) or a local time "2026-01-31 08:00"."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip().replace("/", "-").replace("Z", "+00:00")
        if not text:
            return None
        loose = _LOOSE_DATE.match(text)
        try:
            if loose:
                y, mo, d, h, mi, sec = (int(g) if g else 0 for g in loose.groups())
                moment = datetime(y, mo, d, h, mi, sec)
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            raise KbError(400, f"{label}格式不正确（应为 2026-01-31 或 2026-01-31 08:00）。", "bad_date") from None
    else:
        raise KbError(400, f"{label}格式不正确。", "bad_date")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


def _str_list(value: Any, label: str, limit: int, item_max: int = MAX_QUESTION) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [v for v in value.replace("||", "\n").split("\n")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KbError(400, f"{label}格式不正确。", "bad_field")
    out: list[str] = []
    seen: set[str] = set()
    for item in value:
        item = item.strip()
        if not item or item in seen:
            continue
        if len(item) > item_max:
            raise KbError(400, f"{label}每条不能超过 {item_max} 个字。", "too_long")
        seen.add(item)
        out.append(item)
    if len(out) > limit:
        raise KbError(400, f"{label}最多 {limit} 条。", "too_many")
    return out


def clean_entry(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validate an entry's editable fields; returns the normalised values (answer sanitised).

    ``partial``: only the keys present are checked (an edit). Raises KbError (400)."""
    out: dict[str, Any] = {}
    if not partial or "question" in data:
        question = data.get("question")
        if not isinstance(question, str) or not question.strip():
            raise KbError(400, "标准问题不能为空。", "no_question")
        if len(question.strip()) > MAX_QUESTION:
            raise KbError(400, f"标准问题不能超过 {MAX_QUESTION} 个字。", "too_long")
        out["question"] = question.strip()
    if not partial or "answer" in data:
        answer = data.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise KbError(400, "答案不能为空。", "no_answer")
        if len(answer) > MAX_ANSWER:
            raise KbError(400, f"答案不能超过 {MAX_ANSWER} 个字（当前 {len(answer)} 字）。", "too_long")
        cleaned = sanitize_html(answer)
        if not cleaned.strip():
            raise KbError(400, "答案不能为空。", "no_answer")
        out["answer"] = cleaned
    if "short_answer" in data or not partial:
        short = data.get("short_answer") or ""
        if not isinstance(short, str):
            raise KbError(400, "简短答案格式不正确。", "bad_field")
        if len(short.strip()) > MAX_SHORT_ANSWER:
            raise KbError(400, f"简短答案不能超过 {MAX_SHORT_ANSWER} 个字。", "too_long")
        out["short_answer"] = short.strip()
    if "similar" in data or not partial:
        similar = _str_list(data.get("similar"), "相似问法", MAX_SIMILAR)
        if "question" in out:  # the standard question is not also a similar one
            similar = [s for s in similar if question_key(s) != question_key(out["question"])]
        out["similar"] = similar
    if "keywords" in data or not partial:
        raw = data.get("keywords")
        if isinstance(raw, str):
            raw = split_keywords(raw)
        out["keywords"] = _str_list(raw, "关键词", MAX_KEYWORDS, 64)
    for key in ("valid_from", "valid_to"):
        if key in data or not partial:
            out[key] = parse_moment(data.get(key), FIELD_LABELS[key])
    return out


def split_keywords(text: str) -> list[str]:
    for sep in ("||", "，", "、", ";", "；", "\n"):
        text = text.replace(sep, ",")
    return [k.strip() for k in text.split(",") if k.strip()]


def snapshot(entry: KbEntry, tree: BranchTree | None = None, branch_path: str | None = None) -> dict[str, Any]:
    path = branch_path
    if path is None and tree is not None:
        info = tree.by_id.get(entry.branch_id)
        path = info.path if info else ""
    return {
        "branch_id": entry.branch_id,
        "branch": path or "",
        "question": entry.question,
        "similar": list(entry.similar or []),
        "answer": entry.answer,
        "short_answer": entry.short_answer or "",
        "keywords": list(entry.keywords or []),
        "valid_from": _iso(entry.valid_from),
        "valid_to": _iso(entry.valid_to),
        "status": entry.status,
    }


def _shown(key: str, value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if key == "status":
        return STATUS_LABELS.get(value, str(value))
    if key in ("valid_from", "valid_to"):
        moment = parse_moment(value, FIELD_LABELS[key])
        return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if moment else "（空）"
    if isinstance(value, list):
        return "、".join(value) if value else "（空）"
    return str(value)


def diff_snapshots(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed, field by field, with Chinese labels and a one-line summary each."""
    changes: list[dict[str, Any]] = []
    for key, label in FIELD_LABELS.items():
        old = None if before is None else before.get(key)
        new = after.get(key)
        if key == "branch" and before is not None and before.get("branch_id") == after.get("branch_id"):
            continue
        if (old or None) == (new or None):
            continue
        change: dict[str, Any] = {"field": key, "label": label, "before": old, "after": new}
        if isinstance(new, list) or isinstance(old, list):
            added = [x for x in (new or []) if x not in (old or [])]
            removed = [x for x in (old or []) if x not in (new or [])]
            change["added"], change["removed"] = added, removed
            parts = []
            if added:
                parts.append("新增「" + "」「".join(added) + "」")
            if removed:
                parts.append("删除「" + "」「".join(removed) + "」")
            change["text"] = f"{label}：" + ("，".join(parts) if parts else "调整顺序")
        elif before is None:
            change["text"] = f"{label}：{_shorten(_shown(key, new))}"
        else:
            change["text"] = f"{label}：由「{_shorten(_shown(key, old))}」改为「{_shorten(_shown(key, new))}」"
        changes.append(change)
    return changes


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _view(entry: KbEntry, branch: str, path: str = "") -> EntryView:
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
        self._sessions = sessions

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    # ------------------------------------------------------------------ branches

    async def branch_id(self, session: AsyncSession, name: str) -> int:
        """The id of the top-level branch with exactly this name, created when missing (jsonl loading)."""
        found = await session.execute(select(KbBranch.id).where(KbBranch.name == name, KbBranch.parent_id.is_(None)))
        branch_id = found.scalars().first()
        if branch_id is None:
            branch = KbBranch(name=name)
            session.add(branch)
            await session.flush()
            branch_id = branch.id
        return branch_id

    async def branch_path_id(self, session: AsyncSession, path: str) -> int:
        """The id of a branch by path ("户籍/迁移"), creating the missing parts."""
        parent: int | None = None
        for part in split_path(path):
            condition = KbBranch.parent_id.is_(None) if parent is None else KbBranch.parent_id == parent
            found = await session.execute(select(KbBranch.id).where(KbBranch.name == part, condition))
            branch_id = found.scalars().first()
            if branch_id is None:
                branch = KbBranch(name=part, parent_id=parent)
                session.add(branch)
                await session.flush()
                branch_id = branch.id
            parent = branch_id
        if parent is None:
            raise KbError(400, "知识分类不能为空。", "no_branch")
        return parent

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
        async with self._sessions() as fresh:
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
        async with self._sessions() as session, session.begin():
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
        async with self._sessions() as session, session.begin():
            branch = await session.get(KbBranch, branch_id)
            if branch is None:
                raise KbError(404, "知识分类不存在。", "no_branch")
            if await self._sibling_exists(session, name, branch.parent_id, branch_id):
                raise KbError(409, f"同一级已有名为“{name}”的知识分类。", "duplicate")
            branch.name = name
            await session.flush()
            tree = await self.tree(session)
            published = await self._has_published(session, tree.descendants(branch_id))
            return tree.by_id[branch_id], published

    async def move_branch(self, branch_id: int, parent_id: int | None) -> tuple[BranchInfo, bool]:
        async with self._sessions() as session, session.begin():
            branch = await session.get(KbBranch, branch_id)
            if branch is None:
                raise KbError(404, "知识分类不存在。", "no_branch")
            tree = await self.tree(session)
            if parent_id is not None:
                if parent_id not in tree.by_id:
                    raise KbError(404, "目标上级知识分类不存在。", "no_branch")
                if parent_id in tree.descendants(branch_id):
                    raise KbError(409, "不能把知识分类移动到它自己或它的下级分类中。", "cycle")
            if await self._sibling_exists(session, branch.name, parent_id, branch_id):
                raise KbError(409, f"目标位置已有名为“{branch.name}”的知识分类。", "duplicate")
            branch.parent_id = parent_id
            await session.flush()
            tree = await self.tree(session)
            published = await self._has_published(session, tree.descendants(branch_id))
            return tree.by_id[branch_id], published

    async def delete_branch(self, branch_id: int) -> None:
        async with self._sessions() as session, session.begin():
            branch = await session.get(KbBranch, branch_id)
            if branch is None:
                raise KbError(404, "知识分类不存在。", "no_branch")
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

    async def _has_published(self, session: AsyncSession, branch_ids: list[int]) -> bool:
        found = await session.execute(
            select(KbEntry.id).where(KbEntry.branch_id.in_(branch_ids), KbEntry.status == "published").limit(1))
        return found.first() is not None

    # ------------------------------------------------------------------ entries (legacy bulk path)

    async def count(self) -> int:
        async with self._sessions() as session:
            return int((await session.execute(select(func.count(KbEntry.id)))).scalar_one())

    async def upsert(self, entries: list[dict[str, Any]], *, status: str, editor: str) -> int:
        """Write entries in one transaction (all or nothing); each gets a version row."""
        async with self._sessions() as session, session.begin():
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
        _check_window(values)
        async with self._sessions() as session, session.begin():
            branch_id = await self._branch_for(session, data)
            await self._check_unique(session, values["question"], None)
            now = utcnow()
            row = KbEntry(id=str(uuid.uuid4()), branch_id=branch_id, status=status, created_at=now, updated_at=now,
                          created_by=editor, updated_by=editor, version=0, **values)
            session.add(row)
            await session.flush()
            tree = await self.tree(session)
            self._add_version(session, row, "create", editor, None, snapshot(row, tree))
            view = _view(row, tree.by_id[branch_id].name, tree.by_id[branch_id].path)
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
        async with self._sessions() as session, session.begin():
            row = await self._locked(session, entry_id, expected_version)
            tree = await self.tree(session)
            before = snapshot(row, tree)
            if "branch_id" in data:
                values["branch_id"] = await self._branch_for(session, data)
            merged = {"valid_from": row.valid_from, "valid_to": row.valid_to, **values}
            _check_window(merged)
            if "question" in values and question_key(values["question"]) != question_key(row.question):
                await self._check_unique(session, values["question"], entry_id)
            for key, value in values.items():
                setattr(row, key, value)
            after = snapshot(row, tree)
            if diff_snapshots(before, after):
                row.updated_at = utcnow()
                row.updated_by = editor
                action = "move" if set(values) == {"branch_id"} else "edit"
                self._add_version(session, row, action, editor, before, after)
            view = _view(row, tree.by_id[row.branch_id].name, tree.by_id[row.branch_id].path)
        return Change([entry_id], row.status == "published" and before != after, [view])

    async def set_status(self, entry_id: str, status: str, editor: str) -> Change:
        return await self.set_status_many([entry_id], status, editor)

    async def set_status_many(self, entry_ids: Sequence[str], status: str, editor: str) -> Change:
        """Publish / 转草稿 / archive several entries at once (all or nothing)."""
        if status not in STATUSES:
            raise KbError(400, "状态只能是草稿、已发布或已归档。", "bad_status")
        ids = _unique_ids(entry_ids)
        changed_published = False
        async with self._sessions() as session, session.begin():
            tree = await self.tree(session)
            rows = await self._rows(session, ids)
            for row in rows:
                if row.status == status:
                    continue
                before = snapshot(row, tree)
                changed_published = changed_published or "published" in (row.status, status)
                row.status = status
                row.updated_at = utcnow()
                row.updated_by = editor
                self._add_version(session, row, STATUS_ACTIONS[status], editor, before, snapshot(row, tree))
        return Change(ids, changed_published)

    async def move_entries(self, entry_ids: Sequence[str], branch_id: int, editor: str) -> Change:
        ids = _unique_ids(entry_ids)
        changed_published = False
        async with self._sessions() as session, session.begin():
            if await session.get(KbBranch, branch_id) is None:
                raise KbError(404, "目标知识分类不存在。", "no_branch")
            tree = await self.tree(session)
            for row in await self._rows(session, ids):
                if row.branch_id == branch_id:
                    continue
                before = snapshot(row, tree)
                row.branch_id = branch_id
                row.updated_at = utcnow()
                row.updated_by = editor
                changed_published = changed_published or row.status == "published"
                self._add_version(session, row, "move", editor, before, snapshot(row, tree))
        return Change(ids, changed_published)

    async def delete_entries(self, entry_ids: Sequence[str], editor: str) -> Change:
        """Delete entries; their history stays, closed by a "删除" version."""
        ids = _unique_ids(entry_ids)
        changed_published = False
        async with self._sessions() as session, session.begin():
            tree = await self.tree(session)
            rows = await self._rows(session, ids)
            for row in rows:
                before = snapshot(row, tree)
                changed_published = changed_published or row.status == "published"
                self._add_version(session, row, "delete", editor, None, before, note="条目已删除")
            await session.flush()
            await session.execute(delete(KbEntry).where(KbEntry.id.in_(ids)))
        return Change(ids, changed_published)

    async def rollback(self, entry_id: str, number: int, editor: str) -> Change:
        """Restore the content of version ``number`` (the status stays as it is now) as a new version."""
        async with self._sessions() as session, session.begin():
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
            row.updated_at = utcnow()
            row.updated_by = editor
            after = snapshot(row, tree)
            self._add_version(session, row, "rollback", editor, before, after, note=f"回滚到版本 {number}")
            view = _view(row, tree.by_id[branch_id].name, tree.by_id[branch_id].path)
        return Change([entry_id], row.status == "published", [view])

    async def versions(self, entry_id: str) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            found = await session.execute(select(KbEntryVersion).where(KbEntryVersion.entry_id == entry_id)
                                          .order_by(KbEntryVersion.number.desc()))
            return [_version_json(v) for v in found.scalars().all()]

    async def add_similar(self, entry_id: str, texts: Sequence[str], editor: str) -> Change:
        async with self._sessions() as session:
            row = await session.get(KbEntry, entry_id)
            if row is None:
                raise KbError(404, "知识条目不存在或已被删除。", "no_entry")
            existing = list(row.similar or [])
        merged = existing + [t.strip() for t in texts if t.strip() and t.strip() not in existing
                             and question_key(t) != question_key(row.question)]
        return await self.update_entry(entry_id, {"similar": merged}, editor)

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
        async with self._sessions() as session:
            row = await session.get(KbEntry, entry_id)
            if row is None:
                return None
            tree = await self.tree(session)
            info = tree.by_id.get(row.branch_id)
            return _view(row, info.name if info else "", info.path if info else "")

    async def search(self, text: str = "", status: str = "", limit: int = 500) -> list[EntryView]:
        items, _total = await self.find(SearchFilters(text=text, status=status, limit=limit))
        return items

    async def find(self, filters: SearchFilters) -> tuple[list[EntryView], int]:
        async with self._sessions() as session:
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
            items = []
            for row in found.scalars().all():
                info = tree.by_id.get(row.branch_id)
                items.append(_view(row, info.name if info else "", info.path if info else ""))
            return items, total

    async def editors(self) -> list[str]:
        async with self._sessions() as session:
            found = await session.execute(select(KbEntry.updated_by).distinct())
            return sorted(e for e in found.scalars().all() if e)

    async def all_entries(self, branch_id: int | None = None, status: str = "") -> list[EntryView]:
        async with self._sessions() as session:
            tree = await self.tree(session)
            query = select(KbEntry)
            if status:
                query = query.where(KbEntry.status == status)
            if branch_id is not None:
                query = query.where(KbEntry.branch_id.in_(tree.descendants(branch_id)))
            found = await session.execute(query.order_by(KbEntry.created_at, KbEntry.id))
            out = []
            for row in found.scalars().all():
                info = tree.by_id.get(row.branch_id)
                out.append(_view(row, info.name if info else "", info.path if info else ""))
            return out

    async def published(self) -> list[EntryView]:
        """The published entries (live or not: AnswerService checks the window), ordered by id."""
        return sorted(await self.all_entries(status="published"), key=lambda e: e.id)


def _check_window(values: dict[str, Any]) -> None:
    start, end = values.get("valid_from"), values.get("valid_to")
    if start and end and _aware(end) <= _aware(start):
        raise KbError(400, "失效时间必须晚于生效时间。", "bad_window")


def _unique_ids(entry_ids: Sequence[str]) -> list[str]:
    if not isinstance(entry_ids, list | tuple) or not all(isinstance(i, str) for i in entry_ids):
        raise KbError(400, "条目列表格式不正确。", "bad_field")
    if len(entry_ids) > 5000:
        raise KbError(400, "一次最多操作 5000 个知识条目。", "too_many")
    return list(dict.fromkeys(entry_ids))


def _version_json(version: KbEntryVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "action": version.action,
        "action_label": ACTION_LABELS.get(version.action, version.action),
        "editor": version.editor,
        "created_at": _iso(version.created_at),
        "snapshot": version.snapshot,
        "diff": version.diff,
        "note": version.note,
    }


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

"""快捷回复 (canned responses): shared ones kept by supervisors, personal ones each agent keeps,
searchable by shortcut, title and text, with variables filled in when an agent inserts one.

Variables: {姓名} the citizen's name (a polite 市民朋友 when unknown), {坐席} the agent's display
name, {日期} today's date in China (2026年11月25日). Any other {…} is refused when saved, so a
citizen never sees a raw placeholder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import LIKE_ESCAPE, contains_pattern
from core.models import CannedResponse

SHARED = "shared"
VARIABLES = ("姓名", "坐席", "日期")
NAME_FALLBACK = "市民朋友"
MAX_SHORTCUT = 20
MAX_TITLE = 40
MAX_TEXT = 1000
MAX_PER_SCOPE = 500
CHINA = ZoneInfo("Asia/Shanghai")
_SHORTCUT = re.compile(r"^[0-9A-Za-z_\-\u4e00-\u9fff]+$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

REASONS = {
    "bad_json": "请求格式错误。",
    "bad_scope": "类型只能是“公共”（shared）或“个人”（personal）。",
    "bad_shortcut": f"快捷码只能由字母、数字、汉字、下划线或短横线组成，不超过 {MAX_SHORTCUT} 个字符。",
    "bad_title": f"请填写标题（不超过 {MAX_TITLE} 字）。",
    "empty": "回复内容不能为空。",
    "too_long": f"回复内容不能超过 {MAX_TEXT} 字。",
    "bad_variable": "不支持的变量 {{{name}}}，可用变量：{{姓名}}、{{坐席}}、{{日期}}。",
    "duplicate": "快捷码“{shortcut}”已被使用，请换一个。",
    "too_many": f"快捷回复数量已达上限（{MAX_PER_SCOPE} 条）。",
    "forbidden_shared": "只有班长可以维护公共快捷回复。",
    "not_found": "找不到该快捷回复，或您无权修改。",
}


class CannedError(ValueError):
    """A refused request: `status` for HTTP, `reason` in Chinese."""

    STATUS = {"not_found": 404, "forbidden_shared": 403, "duplicate": 409}

    def __init__(self, code: str, **values: Any) -> None:
        super().__init__(code)
        self.code = code
        self.reason = REASONS[code].format(**values)
        self.status = self.STATUS.get(code, 400)


@dataclass(frozen=True)
class CannedView:
    id: int
    scope: str  # shared / personal
    shortcut: str
    title: str
    text: str
    editable: bool

    def to_json(self, rendered: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "scope": self.scope,
            "shortcut": self.shortcut,
            "title": self.title,
            "text": self.text,
            "editable": self.editable,
        }
        if rendered is not None:
            out["rendered"] = rendered
        return out


def may_edit_shared(user: Any) -> bool:
    return user.role in ("supervisor", "admin")


def render(text: str, *, citizen_name: str | None, agent_name: str, now: datetime | None = None) -> str:
    """Fill in {姓名}, {坐席}, {日期}; anything else is left as written."""
    today = (now or datetime.now(UTC)).astimezone(CHINA)
    values = {
        "姓名": (citizen_name or "").strip() or NAME_FALLBACK,
        "坐席": agent_name or "客服",
        "日期": f"{today.year}年{today.month}月{today.day}日",
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def clean(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate a create (all fields) or an update (`partial`: only those given). Raises CannedError."""
    if not isinstance(data, dict):
        raise CannedError("bad_json")
    out: dict[str, Any] = {}
    if not partial or "scope" in data:
        scope = data.get("scope", "personal")
        if scope not in (SHARED, "personal"):
            raise CannedError("bad_scope")
        out["scope"] = scope
    if not partial or "shortcut" in data:
        shortcut = data.get("shortcut")
        shortcut = shortcut.strip().lstrip("/") if isinstance(shortcut, str) else ""
        if not shortcut or len(shortcut) > MAX_SHORTCUT or not _SHORTCUT.match(shortcut):
            raise CannedError("bad_shortcut")
        out["shortcut"] = shortcut
    if not partial or "title" in data:
        title = data.get("title")
        title = title.strip() if isinstance(title, str) else ""
        if not title or len(title) > MAX_TITLE:
            raise CannedError("bad_title")
        out["title"] = title
    if not partial or "text" in data:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CannedError("empty")
        text = text.strip()
        if len(text) > MAX_TEXT:
            raise CannedError("too_long")
        for name in _PLACEHOLDER.findall(text):
            if name not in VARIABLES:
                raise CannedError("bad_variable", name=name)
        out["text"] = text
    return out


class CannedStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @staticmethod
    def _view(row: CannedResponse, user: Any) -> CannedView:
        shared = row.scope == SHARED
        editable = may_edit_shared(user) if shared else row.owner_id == user.id
        return CannedView(row.id, SHARED if shared else "personal", row.shortcut, row.title, row.text, editable)

    async def list(self, user: Any, query: str = "") -> list[CannedView]:
        """The shared ones and the user's own, matching `query` (shortcut, title or text), shortcut order."""
        statement = select(CannedResponse).where(
            or_(CannedResponse.scope == SHARED, CannedResponse.scope == f"user:{user.id}")
        )
        query = query.strip().lstrip("/")
        if query:
            like = contains_pattern(query.lower())
            statement = statement.where(
                or_(
                    func.lower(CannedResponse.shortcut).like(like, escape=LIKE_ESCAPE),
                    func.lower(CannedResponse.title).like(like, escape=LIKE_ESCAPE),
                    func.lower(CannedResponse.text).like(like, escape=LIKE_ESCAPE),
                )
            )
        async with self._sessions() as session:
            rows = (await session.execute(statement.order_by(CannedResponse.shortcut, CannedResponse.id))).scalars()
            views = [self._view(row, user) for row in rows]
        if query:  # shortcut matches first (prefix before infix), then title or text matches
            q = query.lower()
            views.sort(key=lambda v: 0 if v.shortcut.lower().startswith(q) else 1 if q in v.shortcut.lower() else 2)
        return views

    async def get(self, user: Any, canned_id: int) -> CannedView:
        async with self._sessions() as session:
            row = await session.get(CannedResponse, canned_id)
            if row is None or (row.scope != SHARED and row.owner_id != user.id):
                raise CannedError("not_found")
            return self._view(row, user)

    async def create(self, user: Any, data: Any) -> CannedView:
        fields = clean(data)
        shared = fields.pop("scope") == SHARED
        if shared and not may_edit_shared(user):
            raise CannedError("forbidden_shared")
        scope = SHARED if shared else f"user:{user.id}"
        now = datetime.now(UTC)
        row = CannedResponse(
            scope=scope,
            owner_id=None if shared else user.id,
            updated_by=user.display_name,
            created_at=now,
            updated_at=now,
            **fields,
        )
        async with self._sessions() as session:
            count = await session.execute(select(CannedResponse.id).where(CannedResponse.scope == scope))
            if len(count.all()) >= MAX_PER_SCOPE:
                raise CannedError("too_many")
        await self._save(row, fields["shortcut"], add=True)
        return self._view(row, user)

    async def update(self, user: Any, canned_id: int, data: Any) -> CannedView:
        fields = clean(data, partial=True)
        fields.pop("scope", None)  # a reply does not move between shared and personal
        async with self._sessions() as session:
            row = await session.get(CannedResponse, canned_id)
        if row is None or not self._view(row, user).editable:
            if row is not None and row.scope == SHARED:
                raise CannedError("forbidden_shared")
            raise CannedError("not_found")
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_by = user.display_name
        row.updated_at = datetime.now(UTC)
        await self._save(row, row.shortcut, add=False)
        return self._view(row, user)

    async def delete(self, user: Any, canned_id: int) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(CannedResponse, canned_id)
            if row is None or not self._view(row, user).editable:
                if row is not None and row.scope == SHARED:
                    raise CannedError("forbidden_shared")
                raise CannedError("not_found")
            await session.delete(row)

    async def _save(self, row: CannedResponse, shortcut: str, *, add: bool) -> None:
        try:
            async with self._sessions() as session, session.begin():
                if add:
                    session.add(row)
                else:
                    await session.merge(row)
        except IntegrityError as error:
            raise CannedError("duplicate", shortcut=shortcut) from error

    async def seed(self, items: list[dict[str, str]], editor: str = "demo") -> int:
        """Shared replies for a fresh install (only when there are none)."""
        async with self._sessions() as session, session.begin():
            found = await session.execute(select(CannedResponse.id).where(CannedResponse.scope == SHARED).limit(1))
            if found.first() is not None:
                return 0
            for item in items:
                fields = clean({**item, "scope": SHARED})
                fields.pop("scope")
                session.add(CannedResponse(scope=SHARED, owner_id=None, updated_by=editor, **fields))
        return len(items)

"""The audit log (操作日志): who did what, when, from which IP — one way in for every package.

`record(session, actor, action, target, ip, detail)` adds a row inside the caller's transaction (so an
audited change and its row commit together); `write(sessions, ...)` is the same in a transaction of its
own. Rows are never changed: `search` reads them, `sweep` (the retention sweeper) is the only deleter,
and on PostgreSQL a trigger (migration 0040) refuses every other UPDATE/DELETE/TRUNCATE.

Actions in use (keep the names stable, the admin page filters by them): login, login_failed, logout,
password_change, user_create, user_update, user_disable, user_enable, password_reset, unlock,
view_citizen, export_citizens, kb_export, kb_publish (what citizens are answered changed: publish,
unpublish, edit of a published entry), audit_export, config_change; QA and other packages add theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import CursorResult, Text, cast, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import AuditLog, User, utcnow

DEFAULT_RETENTION_DAYS = 180
PAGE_LIMIT = 500

# What the admin page shows for each action (an unknown action is shown as its code).
ACTION_NAMES = {
    "login": "登录",
    "login_failed": "登录失败",
    "login_locked": "账号锁定",
    "logout": "退出登录",
    "password_change": "修改密码",
    "user_create": "新建用户",
    "user_update": "修改用户",
    "user_disable": "停用用户",
    "user_enable": "启用用户",
    "password_reset": "重置密码",
    "unlock": "解除锁定",
    "view_citizen": "查看客户信息",
    "export": "导出",
    "audit_export": "导出操作日志",
    "kb_publish": "知识库发布变更",
    "export_citizens": "导出客户资料",
    "kb_export": "导出知识库",
    "config_change": "修改配置",
    "merge_citizen": "合并客户",
    "import_citizens": "导入客户",
}


class Actor(Protocol):
    """A logged-in staff member (hub.auth.StaffUser fits)."""

    id: int
    username: str


def _who(actor: Actor | str | None) -> tuple[int | None, str]:
    if actor is None:
        return None, ""
    if isinstance(actor, str):
        return None, actor[:64]
    return actor.id, actor.username[:64]


def record(
    session: AsyncSession,
    actor: Actor | str | None,
    action: str,
    target: str = "",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Add one audit row to `session` (committed with the caller's transaction). `actor`: the staff
    member, or a name when there is no user row (a failed login), or None for the system."""
    user_id, name = _who(actor)
    row = AuditLog(
        user_id=user_id, actor=name, action=action[:64], target=target[:128], ip=(ip or "")[:64], data=detail or {}
    )
    session.add(row)
    return row


async def write(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor | str | None,
    action: str,
    target: str = "",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """`record` in a transaction of its own."""
    async with sessions() as session, session.begin():
        record(session, actor, action, target, ip, detail)


@dataclass(frozen=True)
class AuditQuery:
    """The admin page's filters; empty fields do not filter. `until` is exclusive."""

    actor: str = ""
    action: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: AuditQuery) -> Any:
    # rows written before 0040 (or by code that passes only a user id) name no actor: the user's name
    statement = select(AuditLog, User.username).outerjoin(User, User.id == AuditLog.user_id)
    if query.actor:
        statement = statement.where(or_(AuditLog.actor == query.actor, User.username == query.actor))
    if query.action:
        statement = statement.where(AuditLog.action == query.action)
    if query.since is not None:
        statement = statement.where(AuditLog.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditLog.created_at < query.until)
    if query.text:
        pattern = f"%{_escape_like(query.text)}%"
        statement = statement.where(
            or_(
                AuditLog.target.like(pattern, escape="\\"),
                AuditLog.ip.like(pattern, escape="\\"),
                AuditLog.actor.like(pattern, escape="\\"),
                cast(AuditLog.data, Text).like(pattern, escape="\\"),
            )
        )
    return statement


def row_json(row: AuditLog, username: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.created_at.isoformat() if row.created_at else None,
        "user_id": row.user_id,
        "actor": row.actor or username or "",
        "action": row.action,
        "action_name": ACTION_NAMES.get(row.action, row.action),
        "target": row.target,
        "ip": row.ip,
        "detail": row.data or {},
    }


async def search(
    sessions: async_sessionmaker[AsyncSession], query: AuditQuery, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Matching rows, newest first, and how many match in all."""
    statement = _filtered(query)
    async with sessions() as session:
        total = (await session.execute(select(func.count()).select_from(statement.subquery()))).scalar_one()
        rows = await session.execute(
            statement.order_by(AuditLog.id.desc()).limit(min(limit, PAGE_LIMIT)).offset(max(offset, 0))
        )
        return [row_json(row, username) for row, username in rows], int(total)


async def all_matching(
    sessions: async_sessionmaker[AsyncSession], query: AuditQuery, cap: int = 100_000
) -> list[dict[str, Any]]:
    """Every matching row (newest first, at most `cap`) for an export."""
    async with sessions() as session:
        rows = await session.execute(_filtered(query).order_by(AuditLog.id.desc()).limit(cap))
        return [row_json(row, username) for row, username in rows]


async def sweep(sessions: async_sessionmaker[AsyncSession], retention_days: int) -> int:
    """Delete rows older than the retention period; returns how many. The only deleter: on PostgreSQL
    it sets `zwkf.audit_retention` for this transaction, which the append-only trigger lets through."""
    if retention_days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=retention_days)
    async with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT set_config('zwkf.audit_retention', 'on', true)"))
        result = await session.execute(delete(AuditLog).where(AuditLog.created_at < cutoff))
        assert isinstance(result, CursorResult)  # a DELETE gives a cursor result, which has rowcount
        return int(result.rowcount or 0)

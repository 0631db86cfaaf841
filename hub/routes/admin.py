"""The administrator's pages (管理员): 用户管理 and 操作日志.

Pages: `GET /admin/users`, `GET /admin/audit` (administrators only; others get 403, no login a redirect).

Users: `GET /api/admin/users`, `POST /api/admin/users {username, display_name, role, skill_groups}`
(201 with the one-time initial password), `PATCH /api/admin/users/<id> {display_name, role,
skill_groups, active}`, `POST /api/admin/users/<id>/reset-password` (a new one-time password),
`POST /api/admin/users/<id>/unlock` (lifts a login lock-out).

Audit log: `GET /api/admin/audit?actor=&action=&since=&until=&q=&offset=` (newest first, dates as
YYYY-MM-DD in Beijing time, `until` inclusive) and `GET /api/admin/audit/export` (the same filters,
an .xlsx; the export itself is an audit row).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from core import audit
from core.errors import Refusal
from core.spreadsheet import mime_of, to_xlsx
from hub.app import current_user, error, services_of
from hub.auth import ROLE_NAMES, StaffUser
from hub.routes.access import staff_only
from hub.routes.accounts import client_ip, same_origin
from hub.user_admin import UserAdmin

bp = Blueprint("admin")
PAGES = Path(__file__).resolve().parent.parent / "pages"
BEIJING = ZoneInfo("Asia/Shanghai")
ADMIN = ("admin",)
REFUSED = "只有管理员可以管理用户和查看操作日志。"


def _admin(request: Request) -> UserAdmin:
    services = services_of(request)
    groups = [str(name) for name in (services.settings.get("handoff.groups") or {})]
    return UserAdmin(services.accounts, groups)


def _body(request: Request) -> dict[str, Any]:
    if not same_origin(request):
        raise Refusal(403, "请求来自其他网站，已拒绝。", "cross_site")
    try:
        body = request.json
    except Exception:
        body = None
    if not isinstance(body, dict):
        raise Refusal(400, "请求格式错误。", "bad_json")
    return body


@bp.get("/admin/<name:users|audit>")
async def admin_page(request: Request, name: str) -> HTTPResponse:
    user = await current_user(request)
    if user is None:
        return response.redirect(f"/login?next={quote('/admin/' + name)}")
    if not user.may(*ADMIN):
        return response.html("<h1>403 无权访问</h1><p>您的账号没有此页面的权限。</p>", status=403)
    return response.html((PAGES / f"admin_{name}.html").read_text(encoding="utf-8"))


@bp.get("/api/admin/users")
@staff_only(ADMIN, REFUSED)
async def list_users(request: Request, _user: StaffUser) -> HTTPResponse:
    admin = _admin(request)
    roles = [{"code": code, "name": name} for code, name in ROLE_NAMES.items()]
    return response.json({"items": await admin.list(), "roles": roles, "groups": admin.groups})


@bp.post("/api/admin/users")
@staff_only(ADMIN, REFUSED, (Refusal,))
async def create_user(request: Request, user: StaffUser) -> HTTPResponse:
    created, password = await _admin(request).create(user, _body(request), client_ip(request))
    return response.json({"user": created, "password": password}, status=201)


@bp.patch("/api/admin/users/<user_id:int>")
@staff_only(ADMIN, REFUSED, (Refusal,))
async def update_user(request: Request, user: StaffUser, user_id: int) -> HTTPResponse:
    return response.json({"user": await _admin(request).update(user, user_id, _body(request), client_ip(request))})


@bp.post("/api/admin/users/<user_id:int>/reset-password")
@staff_only(ADMIN, REFUSED, (Refusal,))
async def reset_password(request: Request, user: StaffUser, user_id: int) -> HTTPResponse:
    _body(request)
    return response.json({"password": await _admin(request).reset_password(user, user_id, client_ip(request))})


@bp.post("/api/admin/users/<user_id:int>/unlock")
@staff_only(ADMIN, REFUSED, (Refusal,))
async def unlock_user(request: Request, user: StaffUser, user_id: int) -> HTTPResponse:
    _body(request)
    await _admin(request).unlock(user, user_id, client_ip(request))
    return response.json({"ok": True})


def _day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=BEIJING)
    except ValueError:
        raise Refusal(400, f"{field}格式应为 YYYY-MM-DD。", "bad_date") from None


def audit_query(request: Request) -> audit.AuditQuery:
    args = request.args
    until = _day(args.get("until", ""), "结束日期")
    return audit.AuditQuery(
        actor=args.get("actor", "").strip()[:64],
        action=args.get("action", "").strip()[:64],
        since=_day(args.get("since", ""), "开始日期"),
        until=until + timedelta(days=1) if until else None,
        text=args.get("q", "").strip()[:100],
    )


@bp.get("/api/admin/audit")
@staff_only(ADMIN, REFUSED, (Refusal,))
async def search_audit(request: Request, _user: StaffUser) -> HTTPResponse:
    try:
        offset = max(0, int(request.args.get("offset", "0")))
    except ValueError:
        return error(400, "offset 应为数字。", "bad_offset")
    items, total = await audit.search(services_of(request).sessions, audit_query(request), 100, offset)
    actions = [{"code": code, "name": name} for code, name in audit.ACTION_NAMES.items()]
    return response.json({"items": items, "total": total, "offset": offset, "actions": actions})


EXPORT_COLUMNS = ["时间", "用户", "操作", "操作代码", "对象", "IP 地址", "详情"]


@bp.get("/api/admin/audit/export")
@staff_only(ADMIN, REFUSED, (Refusal,))
async def export_audit(request: Request, user: StaffUser) -> HTTPResponse:
    services = services_of(request)
    query = audit_query(request)
    rows = await audit.all_matching(services.sessions, query)
    await audit.write(
        services.sessions, user, "audit_export", "audit_log", client_ip(request),
        {"count": len(rows), "filters": {k: str(v) for k, v in vars(query).items() if v}},
    )
    table = [
        [
            datetime.fromisoformat(r["at"]).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if r["at"] else "",
            r["actor"], r["action_name"], r["action"], r["target"], r["ip"],
            ", ".join(f"{k}={v}" for k, v in r["detail"].items()),
        ]
        for r in rows
    ]
    data = to_xlsx(EXPORT_COLUMNS, table, title="操作日志", widths=(20, 14, 14, 16, 22, 16, 60))
    stamp = datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    name = quote(f"操作日志-{stamp}.xlsx")
    return response.raw(
        data, content_type=mime_of("xlsx"), headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    )

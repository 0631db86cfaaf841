"""CRM over HTTP. Every read of a profile by staff is an audit row; phone and ID numbers are
masked for roles outside crm.UNMASKED_ROLES.

Profiles (agents, supervisors):
- `GET /api/crm/citizens?q=` — search (name, phone, ID number, 客户编号), for 合并客户;
- `GET /api/crm/citizens/<id>` — one profile with its open tickets;
- `PATCH /api/crm/citizens/<id>` — edit (checked fields; 400 names every bad field: `errors`);
- `GET /api/crm/citizens/<id>/audit` — the profile's audit trail, merged profiles included (supervisors).

Merging: `POST /api/crm/merges {keep_id, merge_id, reason}` — a supervisor merges (200), an
agent's request is a proposal (202); `GET /api/crm/merges/proposals`,
`POST /api/crm/merges/proposals/<id>/accept|refuse` (supervisors).

Tickets (工单, agents and supervisors): `GET /api/crm/tickets?status=&assignee=&overdue=1&citizen_id=`,
`POST /api/crm/tickets`, `GET|PATCH /api/crm/tickets/<id>`, `GET /api/crm/staff` (assignees).

Import/export (supervisors): `GET /api/crm/template?format=xlsx|csv`, `GET /api/crm/export`,
`POST /api/crm/imports` (multipart `file`; 202 with a job id), `GET /api/crm/imports/<id>`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse
from sqlalchemy import select

from core.models import User
from core.spreadsheet import ImportJobs, SpreadsheetError, mime_of
from crm import (
    CitizenImporter,
    CitizenMerger,
    MergeError,
    MergeResult,
    ProfileError,
    TicketDesk,
    TicketError,
    TicketPolicy,
    all_citizens,
    check_pair,
    citizen_template,
    clean_profile,
    export_citizens,
    parse_citizen_table,
)
from hub.app import error
from hub.auth import StaffUser
from hub.routes.access import Handler, staff_only

bp = Blueprint("crm")

EDITORS = ("agent", "supervisor")
# supervisors (and admin: StaffUser.may) merge, import and export; they see numbers in full (crm.UNMASKED_ROLES)
MANAGERS = ("supervisor",)
BEIJING = ZoneInfo("Asia/Shanghai")


def _services(request: Request) -> Any:
    return request.app.ctx.services


def crm_staff_only(roles: tuple[str, ...], refusal: str) -> Callable[[Handler], Handler]:
    """staff_only, with a ticket, merge or spreadsheet problem the handler raises answered as its 4xx."""
    return staff_only(roles, refusal, (TicketError, MergeError, SpreadsheetError))


def _body(request: Request) -> Any:
    try:
        return request.json
    except Exception:
        return None


def _desk(request: Request) -> TicketDesk:
    services = _services(request)
    return TicketDesk(services.sessions, TicketPolicy.from_settings(services.settings))


async def _audit(
    request: Request, user: StaffUser, action: str, citizen_id: int | str, data: dict | None = None
) -> None:
    await _services(request).citizens.audit(user.id, action, f"citizen:{citizen_id}", data)


# ---------------------------------------------------------------------------- profiles


@bp.get("/api/crm/citizens")
@crm_staff_only(EDITORS, "无权查看客户信息。")
async def search_citizens(request: Request, user: StaffUser) -> HTTPResponse:
    found = await _services(request).citizens.search(request.args.get("q", ""))
    for citizen in found:
        await _audit(request, user, "view_citizen", citizen.id, {"via": "search"})
    return response.json({"items": [c.to_json(user.role) for c in found], "total": len(found)})


@bp.get("/api/crm/citizens/<citizen_id:int>")
@crm_staff_only(EDITORS, "无权查看客户信息。")
async def get_citizen(request: Request, user: StaffUser, citizen_id: int) -> HTTPResponse:
    citizen = await _services(request).citizens.get(citizen_id)
    if citizen is None:
        return error(404, "没有找到该客户。", "not_found")
    await _audit(request, user, "view_citizen", citizen_id, {"via": "profile"})
    now = datetime.now(UTC)
    tickets = [t.to_json(now) for t in await _desk(request).open_for_citizen(citizen_id)]
    return response.json({"citizen": citizen.to_json(user.role), "open_tickets": tickets})


@bp.patch("/api/crm/citizens/<citizen_id:int>")
@crm_staff_only(EDITORS, "无权修改客户信息。")
async def edit_citizen(request: Request, user: StaffUser, citizen_id: int) -> HTTPResponse:
    body = _body(request)
    if body is None:
        return error(400, "请求格式错误。", "bad_json")
    try:
        fields = clean_profile(body)
    except ProfileError as problem:
        return response.json(
            {"reason": problem.reason, "code": "bad_field", "field": problem.field, "errors": problem.errors},
            status=400,
        )
    citizens = _services(request).citizens
    try:
        changed = await citizens.update(citizen_id, **fields)
    except KeyError:
        return error(404, "没有找到该客户（或已合并到其他客户）。", "not_found")
    await _audit(request, user, "edit_citizen", citizen_id, {"fields": changed})
    citizen = await citizens.get(citizen_id)
    assert citizen is not None
    return response.json({"id": citizen_id, "changed": changed, "citizen": citizen.to_json(user.role)})


@bp.get("/api/crm/citizens/<citizen_id:int>/audit")
@crm_staff_only(MANAGERS, "只有班长可以查看客户的访问记录。")
async def citizen_audit(request: Request, user: StaffUser, citizen_id: int) -> HTTPResponse:
    if await _services(request).citizens.get(citizen_id) is None:
        return error(404, "没有找到该客户。", "not_found")
    items = await CitizenMerger(_services(request).sessions).audit_trail(citizen_id)
    await _audit(request, user, "view_citizen_audit", citizen_id)
    return response.json({"items": items})


# ---------------------------------------------------------------------------- merging


async def _merge(
    request: Request, merger: CitizenMerger, keep_id: int, merge_id: int, *, user_id: int, reason: str
) -> MergeResult:
    """Merge the records, then let live conversations and routing follow the surviving profile."""
    result = await merger.merge(keep_id, merge_id, user_id=user_id, reason=reason)
    await _services(request).dispatcher.handoff.citizen_merged(keep_id, merge_id, result.open_conversation_ids)
    return result


@bp.post("/api/crm/merges")
@crm_staff_only(EDITORS, "无权合并客户。")
async def merge_citizens(request: Request, user: StaffUser) -> HTTPResponse:
    merger = CitizenMerger(_services(request).sessions)
    keep_id, merge_id, reason = check_pair(_body(request))
    if not user.may(*MANAGERS):
        await merger.propose(keep_id, merge_id, user_id=user.id, reason=reason)
        return response.json(
            {"proposed": True, "message": "已提交合并申请，班长确认后生效。",
             "keep_id": keep_id, "merge_id": merge_id},
            status=202,
        )
    result = await _merge(request, merger, keep_id, merge_id, user_id=user.id, reason=reason)
    return response.json({"merged": True, **result.to_json()})


@bp.get("/api/crm/merges/proposals")
@crm_staff_only(MANAGERS, "只有班长可以处理合并申请。")
async def merge_proposals(request: Request, user: StaffUser) -> HTTPResponse:
    items = await CitizenMerger(_services(request).sessions).proposals()
    return response.json({"items": items})


@bp.post("/api/crm/merges/proposals/<proposal_id:int>/<decision:accept|refuse>")
@crm_staff_only(MANAGERS, "只有班长可以处理合并申请。")
async def decide_proposal(request: Request, user: StaffUser, proposal_id: int, decision: str) -> HTTPResponse:
    merger = CitizenMerger(_services(request).sessions)
    keep_id, merge_id, reason = await merger.proposal(proposal_id)
    if decision == "refuse":
        await merger.refuse(proposal_id, user_id=user.id)
        return response.json({"refused": True})
    result = await _merge(request, merger, keep_id, merge_id, user_id=user.id,
                          reason=reason or f"合并申请 #{proposal_id}")
    return response.json({"merged": True, **result.to_json()})


# ---------------------------------------------------------------------------- tickets


def _int_arg(request: Request, name: str) -> int | None:
    raw = request.args.get(name, "")
    if raw == "":
        return None
    if not raw.isdigit():
        raise TicketError(400, f"参数 {name} 应为数字。", "bad_arg", name)
    return int(raw)


@bp.get("/api/crm/tickets")
@crm_staff_only(EDITORS, "无权查看工单。")
async def list_tickets(request: Request, user: StaffUser) -> HTTPResponse:
    status = request.args.get("status", "active")
    if status not in ("active", "all", "open", "processing", "resolved", "closed"):
        return error(400, "状态只能是待处理、处理中、已解决、已关闭或全部。", "bad_status")
    assignee = request.args.get("assignee", "")
    if assignee == "me":
        assignee_id: int | None = user.id
    else:
        assignee_id = None if assignee in ("", "none") else _int_arg(request, "assignee")
    citizen_id = _int_arg(request, "citizen_id")
    citizen_ids = None
    if citizen_id is not None:
        citizen_ids = await CitizenMerger(_services(request).sessions).history_ids(citizen_id)
    desk = _desk(request)
    items = await desk.list(
        status=None if status == "all" else status,
        assignee_id=assignee_id,
        unassigned=assignee == "none",
        overdue=request.args.get("overdue", "") in ("1", "true", "on"),
        citizen_ids=citizen_ids,
        group=request.args.get("group", "")[:64] or None,
    )
    now = desk.clock()
    return response.json({"items": [t.to_json(now) for t in items], "total": len(items), "now": now.isoformat()})


@bp.post("/api/crm/tickets")
@crm_staff_only(EDITORS, "无权创建工单。")
async def create_ticket(request: Request, user: StaffUser) -> HTTPResponse:
    desk = _desk(request)
    ticket = await desk.create(_body(request), created_by=user.id)
    await _audit(request, user, "create_ticket", ticket.citizen_id, {"ticket": ticket.id})
    return response.json(ticket.to_json(desk.clock()), status=201)


async def _ticket_detail(request: Request, user: StaffUser, desk: TicketDesk, ticket_id: int) -> dict[str, Any] | None:
    ticket = await desk.get(ticket_id)
    if ticket is None:
        return None
    citizen = await _services(request).citizens.get(ticket.citizen_id)
    await _audit(request, user, "view_citizen", ticket.citizen_id, {"via": "ticket", "ticket": ticket_id})
    return {
        "ticket": ticket.to_json(desk.clock()),
        "events": await desk.events(ticket_id),
        "citizen": citizen.to_json(user.role) if citizen else None,
    }


@bp.get("/api/crm/tickets/<ticket_id:int>")
@crm_staff_only(EDITORS, "无权查看工单。")
async def get_ticket(request: Request, user: StaffUser, ticket_id: int) -> HTTPResponse:
    detail = await _ticket_detail(request, user, _desk(request), ticket_id)
    if detail is None:
        return error(404, "没有找到该工单。", "not_found")
    return response.json(detail)


@bp.patch("/api/crm/tickets/<ticket_id:int>")
@crm_staff_only(EDITORS, "无权处理工单。")
async def update_ticket(request: Request, user: StaffUser, ticket_id: int) -> HTTPResponse:
    body = _body(request)
    notify = isinstance(body, dict) and body.pop("notify_citizen", False) is True
    desk = _desk(request)
    ticket, changed = await desk.update(ticket_id, body, user_id=user.id)
    await _audit(request, user, "update_ticket", ticket.citizen_id, {"ticket": ticket_id, "changed": changed})
    delivered = False
    target = await desk.reply_conversation(ticket) if notify and "reply" in changed else None
    if target:
        delivered = await _send_reply(request, user, target, ticket_id, str(body["reply"]).strip())
    detail = await _ticket_detail(request, user, desk, ticket_id)
    return response.json({"changed": changed, "delivered": delivered, **(detail or {})})


async def _send_reply(request: Request, user: StaffUser, conversation_id: str, ticket_id: int, text: str) -> bool:
    """A ticket's reply also goes to the citizen on the channel of the conversation it came from."""
    services = _services(request)
    conversation = await services.conversations.get(conversation_id)
    if conversation is None:
        return False
    # the ticket's conversation has usually ended: the citizen reads (and the web chat shows) the one open now
    conversation = await services.dispatcher.open_conversation(conversation.channel, conversation.channel_user_id)
    await services.dispatcher.say(
        conversation, "agent", f"【工单 #{ticket_id} 答复】{text}", sender_name=user.display_name,
        meta={"ticket_id": ticket_id},
    )
    return True


@bp.get("/api/crm/staff")
@crm_staff_only(EDITORS, "无权查看坐席名单。")
async def staff(request: Request, user: StaffUser) -> HTTPResponse:
    async with _services(request).sessions() as session:
        rows = (
            await session.execute(
                select(User.id, User.username, User.display_name, User.role)
                .where(User.role.in_(("agent", "supervisor"))).order_by(User.id)
            )
        ).all()
    groups = sorted((_services(request).settings.get("handoff.groups") or {}).keys())
    return response.json({
        "me": user.id,
        "items": [{"id": i, "username": u, "display_name": d, "role": r} for i, u, d, r in rows],
        "groups": groups,
    })


# ---------------------------------------------------------------------------- import / export


def _kind(request: Request) -> str:
    kind = request.args.get("format", "xlsx")
    if kind not in ("xlsx", "csv"):
        raise SpreadsheetError(400, "格式只能是 xlsx 或 csv。", "bad_format")
    return kind


def _download(data: bytes, name: str, kind: str) -> HTTPResponse:
    filename = f"{name}.{kind}"
    return response.raw(data, content_type=mime_of(kind), headers={
        "Content-Disposition": f"attachment; filename=\"citizens.{kind}\"; filename*=UTF-8''{quote(filename)}"})


def _jobs(request: Request) -> ImportJobs:
    services = _services(request)
    return ImportJobs(services.redis, services.keys.prefix, "crm")


@bp.get("/api/crm/template")
@crm_staff_only(MANAGERS, "只有班长可以导入客户资料。")
async def template(request: Request, user: StaffUser) -> HTTPResponse:
    kind = _kind(request)
    return _download(citizen_template(kind), "客户资料导入模板", kind)


@bp.get("/api/crm/export")
@crm_staff_only(MANAGERS, "只有班长可以导出客户资料。")
async def export(request: Request, user: StaffUser) -> HTTPResponse:
    kind = _kind(request)
    citizens = await all_citizens(_services(request).sessions)
    await _services(request).citizens.audit(
        user.id, "export_citizens", "citizens", {"count": len(citizens), "ids": [c.id for c in citizens][:5000]}
    )
    stamp = datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    return _download(export_citizens(citizens, kind), f"客户资料导出-{stamp}", kind)


@bp.post("/api/crm/imports")
@crm_staff_only(MANAGERS, "只有班长可以导入客户资料。")
async def start_import(request: Request, user: StaffUser) -> HTTPResponse:
    upload = request.files.get("file") if request.files else None
    if upload is None:
        return error(400, "请选择要导入的文件。", "no_file")
    rows = parse_citizen_table(upload.body, upload.name or "")
    if not rows:
        return error(400, "表格中没有数据行。", "empty_file")
    jobs = _jobs(request)
    job_id = await jobs.create(len(rows), user.username, upload.name or "")
    importer = CitizenImporter(_services(request).sessions)

    async def work(progress: Any) -> Any:
        return await importer.run(rows, user_id=user.id, progress=progress)

    request.app.add_task(jobs.run(job_id, work, len(rows)), name=f"crm_import_{job_id}")
    return response.json({"id": job_id, "total": len(rows)}, status=202)


@bp.get("/api/crm/imports/<job_id:str>")
@crm_staff_only(MANAGERS, "只有班长可以导入客户资料。")
async def import_status(request: Request, user: StaffUser, job_id: str) -> HTTPResponse:
    state = await _jobs(request).get(job_id[:64])
    if state is None:
        return error(404, "导入任务不存在或已过期。", "no_job")
    return response.json(state)

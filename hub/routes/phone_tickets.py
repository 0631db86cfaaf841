"""Tickets for people who phone in, and the number an agent must call back.

- `POST /api/crm/phone_tickets` {name?, phone, title, body?, group?, mine?, callback?}: the 新建工单
  form on /tickets. The caller's profile is found by their phone number (created, with the name,
  the first time); `callback` (default true) titles the ticket 请回电：…; `mine` assigns it to me.
- `GET /api/crm/tickets/<id>/callback_phone`: the caller's full number for the ticket's assignee (an
  agent otherwise sees it masked, crm.mask), on a ticket that asks for a call back (请回电, or a
  citizen's 留言); every look is written to the audit log (`view_phone`).
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from crm import TicketDesk, TicketError, TicketPolicy
from crm.validation import ProfileError, clean_profile
from hub.app import error, services_of
from hub.auth import StaffUser
from hub.routes.access import staff_only

bp = Blueprint("phone_tickets")

CALLBACK_PREFIX = "请回电："
STAFF = ("agent", "supervisor")


def _desk(request: Request) -> TicketDesk:
    services = services_of(request)
    return TicketDesk(services.sessions, TicketPolicy.from_settings(services.settings))


def asks_for_callback(title: str, source: str) -> bool:
    """A ticket whose citizen waits for a call: a phone-in 请回电 ticket or a citizen's own 留言."""
    return title.startswith(CALLBACK_PREFIX) or source == "message"


@bp.post("/api/crm/phone_tickets")
@staff_only(STAFF, "无权创建工单。", (TicketError,))
async def phone_ticket(request: Request, user: StaffUser) -> HTTPResponse:
    try:
        body: Any = request.json
    except Exception:
        body = None
    if not isinstance(body, dict):
        return error(400, "请求格式错误。", "bad_json")
    phone = str(body.get("phone") or "").strip()
    if not phone:
        return response.json({"reason": "请填写来电号码。", "code": "bad_field", "field": "phone"}, status=400)
    profile: dict[str, Any] = {"phone": phone}
    if str(body.get("name") or "").strip():
        profile["name"] = str(body["name"]).strip()
    try:
        fields = clean_profile(profile)
    except ProfileError as problem:
        return response.json({"reason": problem.reason, "code": "bad_field", "field": problem.field}, status=400)
    services = services_of(request)
    citizens = services.citizens
    citizen_id = await citizens.resolve("phone", fields["phone"])
    known = await citizens.get(citizen_id)
    missing = {k: v for k, v in fields.items() if known is None or not getattr(known, k)}
    if missing:
        await citizens.update(citizen_id, **missing)
    title = str(body.get("title") or "").strip()
    if body.get("callback", True) is not False and title and not title.startswith(CALLBACK_PREFIX):
        title = CALLBACK_PREFIX + title
    data = {"citizen_id": citizen_id, "title": title, "body": body.get("body") or "", "group": body.get("group") or ""}
    if body.get("mine"):
        data["assignee_id"] = user.id
    desk = _desk(request)
    ticket = await desk.create(data, created_by=user.id)
    await citizens.audit(user.id, "create_ticket", f"citizen:{citizen_id}", {"ticket": ticket.id, "via": "phone"})
    return response.json(ticket.to_json(desk.clock()), status=201)


@bp.get("/api/crm/tickets/<ticket_id:int>/callback_phone")
@staff_only(STAFF, "无权查看工单。", (TicketError,))
async def callback_phone(request: Request, user: StaffUser, ticket_id: int) -> HTTPResponse:
    ticket = await _desk(request).get(ticket_id)
    if ticket is None:
        return error(404, "没有找到该工单。", "not_found")
    if ticket.assignee_id != user.id and not user.may("supervisor"):
        return error(403, "只有该工单的处理人可以查看完整电话。", "not_assignee")
    if not asks_for_callback(ticket.title, ticket.source):
        return error(403, "这张工单不需要回电，电话号码按规定隐藏。", "no_callback")
    citizens = services_of(request).citizens
    citizen = await citizens.get(ticket.citizen_id)
    if citizen is None or not citizen.phone:
        return error(404, "该客户没有留下电话号码。", "no_phone")
    await citizens.audit(user.id, "view_phone", f"citizen:{ticket.citizen_id}", {"ticket": ticket_id})
    return response.json({"ticket_id": ticket_id, "phone": citizen.phone})

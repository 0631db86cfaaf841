"""Handoff's HTTP side and its background task.

- every worker runs the handoff sweeper (presence heartbeats of the sockets it holds; under a
  Redis lock: silent agents go offline and their conversations are requeued at the front,
  long waiters are offered 留言, waiting conversations are auto-assigned);
- `GET /api/handoff/board` — the supervisor board (queues, waits, agents' states and loads);
- `GET /api/handoff/agents` — agents' presence and load (for a transfer dialog);
- `GET /api/handoff/canned?q=&conversation_id=` — 快捷回复 (shared + mine), searched by shortcut,
  title or text; with a conversation of mine, each carries `rendered` (variables filled in);
  `POST /api/handoff/canned`, `PUT|DELETE /api/handoff/canned/<id>` — shared ones by supervisors
  only, personal ones by their owner (handoff.canned).
"""

from __future__ import annotations

import asyncio
import contextlib

from sanic import Blueprint, Request, Sanic, response
from sanic.response import HTTPResponse

from handoff import CannedError, CannedStore, Owner, render_canned
from hub.app import error
from hub.auth import StaffUser
from hub.routes.access import staff_only

bp = Blueprint("handoff")

STAFF = ("agent", "supervisor")


@bp.after_server_start
async def start_sweeper(app: Sanic) -> None:
    handoff = app.ctx.services.dispatcher.handoff
    app.ctx.handoff_sweeper = asyncio.create_task(handoff.run(), name="handoff_sweeper")


@bp.before_server_stop
async def stop_sweeper(app: Sanic) -> None:
    task = getattr(app.ctx, "handoff_sweeper", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@bp.get("/api/handoff/board")
@staff_only(("supervisor",), "只有班长可以查看监控面板。")
async def board(request: Request, user: StaffUser) -> HTTPResponse:
    return response.json(await request.app.ctx.services.dispatcher.handoff.board(), default=str)


@bp.get("/api/handoff/agents")
@staff_only(STAFF, "无权查看坐席状态。")
async def agents(request: Request, user: StaffUser) -> HTTPResponse:
    handoff = request.app.ctx.services.dispatcher.handoff
    return response.json({"items": await handoff.agents(), "groups": sorted(handoff.config.groups)})


# ------------------------------------------------------------------------------ 快捷回复


# 快捷回复 are for agents and supervisors; a CannedError becomes its 4xx
canned_staff_only = staff_only(STAFF, "无权使用快捷回复。", (CannedError,))


def _body(request: Request) -> object:
    try:
        return request.json
    except Exception:
        return None


@bp.get("/api/handoff/canned")
@canned_staff_only
async def canned_list(request: Request, user: StaffUser) -> HTTPResponse:
    services = request.app.ctx.services
    items = await CannedStore(services.sessions).list(user, request.args.get("q", "")[:50])
    conversation_id = request.args.get("conversation_id")
    if not conversation_id:
        return response.json({"items": [item.to_json() for item in items], "total": len(items)})
    conversation = await services.conversations.get(conversation_id[:64])
    if conversation is None:
        return error(404, "找不到该会话。", "not_found")
    state = await services.ownership.state(conversation.id)
    if not user.may("supervisor") and not (state.owner == Owner.AGENT and state.agent_id == user.id):
        return error(403, "该会话不在您的接待列表中。", "not_yours")
    citizen = await services.citizens.get(conversation.citizen_id)
    name = citizen.name if citizen else None
    rendered = [
        item.to_json(render_canned(item.text, citizen_name=name, agent_name=user.display_name)) for item in items
    ]
    return response.json({"items": rendered, "total": len(rendered)})


@bp.post("/api/handoff/canned")
@canned_staff_only
async def canned_create(request: Request, user: StaffUser) -> HTTPResponse:
    item = await CannedStore(request.app.ctx.services.sessions).create(user, _body(request))
    return response.json(item.to_json(), status=201)


@bp.put("/api/handoff/canned/<canned_id:int>")
@canned_staff_only
async def canned_update(request: Request, user: StaffUser, canned_id: int) -> HTTPResponse:
    item = await CannedStore(request.app.ctx.services.sessions).update(user, canned_id, _body(request))
    return response.json(item.to_json())


@bp.delete("/api/handoff/canned/<canned_id:int>")
@canned_staff_only
async def canned_delete(request: Request, user: StaffUser, canned_id: int) -> HTTPResponse:
    await CannedStore(request.app.ctx.services.sessions).delete(user, canned_id)
    return response.json({"deleted": canned_id})

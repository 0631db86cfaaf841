"""The console's KB search box (智能推荐 → 搜索知识库): `GET /api/handoff/kb_search?q=` answers an agent or
a supervisor with the live KB entries that best match what they typed (the same ranking the bot and
智能推荐 use, kb_sync.AnswerService.suggest), each with its short answer to insert."""

from __future__ import annotations

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from handoff import assist_items
from hub.app import error, services_of
from hub.auth import StaffUser
from hub.routes.access import staff_only

bp = Blueprint("assist")

MAX_QUERY = 100
RESULTS = 5


@bp.get("/api/handoff/kb_search")
@staff_only(("agent", "supervisor"), "无权搜索知识库。")
async def kb_search(request: Request, user: StaffUser) -> HTTPResponse:
    query = (request.args.get("q") or "").strip()
    if not query:
        return response.json({"items": []})
    if len(query) > MAX_QUERY:
        return error(400, f"搜索内容不能超过 {MAX_QUERY} 字。", "too_long")
    found = await services_of(request).answers.suggest(query, RESULTS)
    return response.json({"items": assist_items(found)})

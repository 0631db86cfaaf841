"""CRM over HTTP: staff edit a citizen's profile (checked fields, audited)."""

from __future__ import annotations

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from crm import ProfileError, clean_profile
from hub.app import current_user, error

bp = Blueprint("crm")

EDITORS = ("agent", "supervisor")


@bp.patch("/api/crm/citizens/<citizen_id:int>")
async def edit_citizen(request: Request, citizen_id: int) -> HTTPResponse:
    user = await current_user(request)
    if user is None:
        return error(401, "请先登录。", "login_required")
    if not user.may(*EDITORS):
        return error(403, "无权修改客户信息。", "forbidden")
    try:
        body = request.json
    except Exception:
        return error(400, "请求格式错误。", "bad_json")
    try:
        fields = clean_profile(body)
    except ProfileError as problem:
        return response.json({"reason": problem.reason, "code": "bad_field", "field": problem.field}, status=400)
    citizens = request.app.ctx.services.citizens
    try:
        changed = await citizens.update(citizen_id, **fields)
    except KeyError:
        return error(404, "没有找到该客户。", "not_found")
    await citizens.audit(user.id, "edit_citizen", f"citizen:{citizen_id}", {"fields": changed})
    return response.json({"id": citizen_id, "changed": changed})

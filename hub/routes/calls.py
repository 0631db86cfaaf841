"""The call center over HTTP (通话记录, call controls, click-to-call, agents' extensions).

- `GET /api/calls/status` — whether this worker runs the SIP user agent (for health checks);
- `GET /api/calls?number=&agent_id=&outcome=&date_from=&date_to=` — search (agents, supervisors, QA);
- `GET /api/calls/<id>` — one call with its segments; `GET /api/calls/<id>/waveform` — peaks to draw;
- `GET /api/calls/<id>/recording` — the WAV (Range requests: the player seeks);
- `GET /api/calls/<id>/export`, `GET /api/calls/export?…` — one recording, or a zip of a search's (audited);
- `GET /api/calls/by-conversation/<conversation id>` — the call behind a console conversation;
- `POST /api/calls/<id>/hold|resume|hangup` — the serving agent's controls (hang-up: `{disposition}`);
- `POST /api/calls/dial {number | citizen_id | conversation_id}` — click-to-call: the agent's phone, then the citizen;
- `GET|PUT /api/calls/extension` — the signed-in agent's SIP extension (`{sip_uri}`);
  `PUT /api/calls/extensions/<user id>` — a supervisor sets anyone's.

Phone numbers are masked (`***1234`) for roles outside crm.UNMASKED_ROLES.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from core.events import VoiceCommandEvent
from crm import UNMASKED_ROLES, mask
from handoff import DISPOSITIONS, HandoffError
from hub.app import current_user, error
from hub.auth import StaffUser
from hub.routes.access import staff_only
from voice_bridge import CallQuery, CallRecords, VoiceConfig, as_json, peaks

bp = Blueprint("calls")

READERS = ("agent", "supervisor", "inspector")
AGENTS = ("agent", "supervisor")
BEIJING = ZoneInfo("Asia/Shanghai")
MAX_EXPORT = 500
SIP_URI = re.compile(r"^sips?:[A-Za-z0-9._~+\-]+@[A-Za-z0-9.\-]+(:\d{1,5})?(;[A-Za-z0-9=;._\-]*)?$")
PHONE = re.compile(r"^\+?\d{3,20}$")


def _services(request: Request) -> Any:
    return request.app.ctx.services


def _records(request: Request) -> CallRecords:
    services = _services(request)
    if services.voice is not None:
        return services.voice.records
    config = VoiceConfig.from_settings(services.settings)
    return CallRecords(services.sessions, config.recordings_dir)


def _view(row: Any, user: StaffUser) -> dict[str, Any]:
    """The record as JSON; the citizen's number masked for roles without the right (never the hotline's)."""
    data = as_json(row)
    if user.role not in UNMASKED_ROLES:
        citizen_side = "caller" if row.direction == "inbound" else "callee"
        data[citizen_side] = mask(data[citizen_side])
    return data


def _day(value: str, field: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=BEIJING)
    except ValueError:
        raise ValueError(field) from None


def _query(request: Request) -> CallQuery | HTTPResponse:
    args = request.args
    try:
        date_from = _day(args.get("date_from"), "date_from") if args.get("date_from") else None
        date_to = _day(args.get("date_to"), "date_to") + timedelta(days=1) if args.get("date_to") else None
    except ValueError:
        return error(400, "日期格式应为 年-月-日（如 2026-12-01）。", "bad_date")
    agent = args.get("agent_id") or ""
    if agent and not agent.isdigit():
        return error(400, "坐席编号应为数字。", "bad_agent")
    try:
        limit = min(int(args.get("limit", 100)), 500)
        offset = max(int(args.get("offset", 0)), 0)
    except ValueError:
        return error(400, "分页参数应为数字。", "bad_page")
    return CallQuery(
        number=(args.get("number") or "").strip()[:32], agent_id=int(agent) if agent else None,
        outcome=(args.get("outcome") or "").strip(), date_from=date_from, date_to=date_to, limit=limit, offset=offset,
    )


@bp.get("/api/calls/status")
async def status(request: Request) -> HTTPResponse:
    voice = _services(request).voice
    body: dict[str, Any] = {"enabled": voice is not None, "running": bool(voice and voice.running)}
    if voice is not None and voice.running:
        body |= {"calls": len(voice.sessions) + len(voice.outbound), "media": voice.clock.stats()}
    return response.json(body)


@bp.get("/api/calls")
@staff_only(READERS, "无权查看通话记录。")
async def search(request: Request, user: StaffUser) -> HTTPResponse:
    query = _query(request)
    if isinstance(query, HTTPResponse):
        return query
    rows = await _records(request).search(query)
    return response.json({"calls": [_view(row, user) for row in rows]})


async def _call(request: Request, call_id: str) -> Any:
    row = await _records(request).get(call_id)
    return row


@bp.get("/api/calls/<call_id>")
@staff_only(READERS, "无权查看通话记录。")
async def detail(request: Request, user: StaffUser, call_id: str) -> HTTPResponse:
    row = await _call(request, call_id)
    if row is None:
        return error(404, "没有这条通话记录。", "not_found")
    return response.json(_view(row, user))


@bp.get("/api/calls/by-conversation/<conversation_id>")
@staff_only(AGENTS, "无权查看通话。")
async def by_conversation(request: Request, user: StaffUser, conversation_id: str) -> HTTPResponse:
    row = await _records(request).by_conversation(conversation_id)
    if row is None:
        return error(404, "这个会话不是电话。", "not_a_call")
    return response.json(_view(row, user))


def _recording(row: Any) -> Path | None:
    if row is None or not row.recording_path:
        return None
    path = Path(row.recording_path)
    return path if path.exists() else None


@bp.get("/api/calls/<call_id>/waveform")
@staff_only(READERS, "无权收听录音。")
async def waveform(request: Request, user: StaffUser, call_id: str) -> HTTPResponse:
    path = _recording(await _call(request, call_id))
    if path is None:
        return error(404, "这通电话没有录音（可能已超过保存期限）。", "no_recording")
    return response.json({"peaks": peaks(path.read_bytes(), 600), "channels": ["市民", "坐席/智能客服"]})


@bp.get("/api/calls/<call_id>/recording")
@staff_only(READERS, "无权收听录音。")
async def recording(request: Request, user: StaffUser, call_id: str) -> HTTPResponse:
    path = _recording(await _call(request, call_id))
    if path is None:
        return error(404, "这通电话没有录音（可能已超过保存期限）。", "no_recording")
    data = path.read_bytes()
    size = len(data)
    found = re.match(r"bytes=(\d*)-(\d*)$", request.headers.get("range", ""))
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=300"}
    if found and (found.group(1) or found.group(2)):
        if found.group(1):
            start = int(found.group(1))
            end = min(int(found.group(2)) if found.group(2) else size - 1, size - 1)
        else:
            start, end = max(0, size - int(found.group(2))), size - 1
        if start >= size or start > end:
            return response.raw(b"", status=416, headers={"Content-Range": f"bytes */{size}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return response.raw(data[start : end + 1], status=206, headers=headers, content_type="audio/wav")
    return response.raw(data, headers=headers, content_type="audio/wav")


def _file_name(row: Any) -> str:
    when = row.started_at.astimezone(BEIJING).strftime("%Y%m%d-%H%M%S")
    return f"通话录音-{when}-{row.id[:8]}.wav"


def _attachment(name: str) -> str:
    from urllib.parse import quote

    return f"attachment; filename*=UTF-8''{quote(name)}"


@bp.get("/api/calls/<call_id>/export")
@staff_only(AGENTS + ("inspector",), "无权导出录音。")
async def export_one(request: Request, user: StaffUser, call_id: str) -> HTTPResponse:
    row = await _call(request, call_id)
    path = _recording(row)
    if path is None:
        return error(404, "这通电话没有录音（可能已超过保存期限）。", "no_recording")
    await _services(request).citizens.audit(user.id, "call.export", f"call:{call_id}", {"files": 1})
    return response.raw(path.read_bytes(), content_type="audio/wav",
                        headers={"Content-Disposition": _attachment(_file_name(row))})


@bp.get("/api/calls/export")
@staff_only(("supervisor", "inspector"), "只有班长和质检员可以批量导出录音。")
async def export_many(request: Request, user: StaffUser) -> HTTPResponse:
    query = _query(request)
    if isinstance(query, HTTPResponse):
        return query
    rows = await _records(request).search(CallQuery(**{**query.__dict__, "limit": MAX_EXPORT, "offset": 0}))
    files = [(row, path) for row in rows if (path := _recording(row)) is not None]
    if not files:
        return error(404, "查询结果中没有可导出的录音。", "no_recordings")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for row, path in files:
            archive.write(path, _file_name(row))
    filters = {k: v for k, v in request.args.items()}
    await _services(request).citizens.audit(
        user.id, "call.export", "calls:search",
        {"files": len(files), "filters": filters, "ids": [row.id for row, _ in files]},
    )
    stamp = datetime.now(BEIJING).strftime("%Y%m%d-%H%M%S")
    return response.raw(out.getvalue(), content_type="application/zip",
                        headers={"Content-Disposition": _attachment(f"通话录音-{stamp}.zip")})


async def _command(request: Request, **fields: Any) -> None:
    await _services(request).bus.publish(VoiceCommandEvent(**fields))


async def _served_call(request: Request, user: StaffUser, call_id: str) -> Any:
    row = await _call(request, call_id)
    if row is None or row.ended_at is not None:
        return None
    if user.role != "supervisor" and user.role != "admin" and row.agent_id != user.id:
        return None
    return row


@bp.post("/api/calls/<call_id>/<action:hold|resume>")
@staff_only(AGENTS, "无权操作通话。")
async def hold(request: Request, user: StaffUser, call_id: str, action: str) -> HTTPResponse:
    row = await _served_call(request, user, call_id)
    if row is None:
        return error(409, "这通电话已结束或不由您接听。", "not_your_call")
    await _command(request, action=action, call_id=call_id, agent_id=user.id)
    return response.json({"ok": True, "on_hold": action == "hold"})


@bp.post("/api/calls/<call_id>/hangup")
@staff_only(AGENTS, "无权操作通话。")
async def hangup(request: Request, user: StaffUser, call_id: str) -> HTTPResponse:
    row = await _served_call(request, user, call_id)
    if row is None:
        return error(409, "这通电话已结束或不由您接听。", "not_your_call")
    body = request.json if isinstance(request.json, dict) else {}
    disposition = str(body.get("disposition") or "resolved")
    if disposition not in DISPOSITIONS:
        return error(400, "请选择有效的结束原因。", "bad_disposition")
    services = _services(request)
    if row.conversation_id:
        conversation = await services.conversations.get(row.conversation_id)
        if conversation is not None and conversation.status == "open":
            try:
                summary = str(body.get("summary") or "")
                await services.dispatcher.handoff.close(conversation, user.id, disposition, summary)
            except HandoffError:
                pass  # no longer this agent's conversation: the call is still hung up
    await _records(request).update(call_id, disposition=disposition)
    await _command(request, action="hangup", call_id=call_id, agent_id=user.id)
    return response.json({"ok": True})


@bp.post("/api/calls/dial")
@staff_only(AGENTS, "无权外呼。")
async def dial(request: Request, user: StaffUser) -> HTTPResponse:
    body = request.json if isinstance(request.json, dict) else {}
    services = _services(request)
    number = re.sub(r"[\s\-]", "", str(body.get("number") or ""))
    citizen_id = body.get("citizen_id")
    conversation_id = body.get("conversation_id")
    if not number and isinstance(conversation_id, str) and not isinstance(citizen_id, int):
        conversation = await services.conversations.get(conversation_id)
        citizen_id = conversation.citizen_id if conversation else None
    if not number and isinstance(citizen_id, int):
        citizen = await services.citizens.get(citizen_id)
        number = re.sub(r"[\s\-]", "", (citizen.phone or "") if citizen else "")
    if not PHONE.match(number):
        if not body.get("number"):
            return error(400, "这位市民的资料里没有电话号码。", "no_number")
        return error(400, "请填写正确的电话号码。", "bad_number")
    if not await _records(request).extension(user.id):
        return error(409, "请先在个人资料中登记您的分机（SIP 地址），外呼会先呼叫您的分机。", "no_extension")
    call_id = str(uuid.uuid4())
    await _command(request, action="dial", call_id=call_id, agent_id=user.id, number=number,
                   citizen_id=citizen_id if isinstance(citizen_id, int) else None)
    await services.citizens.audit(user.id, "call.dial", f"call:{call_id}",
                                  {"citizen_id": citizen_id, "conversation_id": conversation_id})
    return response.json({"call_id": call_id}, status=202)


@bp.get("/api/calls/extension")
@staff_only(AGENTS, "无权查看分机。")
async def my_extension(request: Request, user: StaffUser) -> HTTPResponse:
    return response.json({"sip_uri": await _records(request).extension(user.id) or ""})


async def _set_extension(request: Request, user_id: int) -> HTTPResponse:
    body = request.json if isinstance(request.json, dict) else {}
    uri = str(body.get("sip_uri") or "").strip()
    if not SIP_URI.match(uri):
        return error(400, "分机应为 SIP 地址，例如 sip:8001@192.168.1.20:5060。", "bad_sip_uri")
    await _records(request).set_extension(user_id, uri)
    return response.json({"sip_uri": uri})


@bp.put("/api/calls/extension")
@staff_only(AGENTS, "无权修改分机。")
async def set_my_extension(request: Request, user: StaffUser) -> HTTPResponse:
    return await _set_extension(request, user.id)


@bp.put("/api/calls/extensions/<user_id:int>")
@staff_only(("supervisor",), "只有班长可以修改他人的分机。")
async def set_extension(request: Request, user: StaffUser, user_id: int) -> HTTPResponse:
    return await _set_extension(request, user_id)


PAGE = Path(__file__).resolve().parent.parent / "pages" / "calls.html"


@bp.get("/calls")
async def calls_page(request: Request) -> HTTPResponse:
    user = await current_user(request)
    if user is None:
        return response.redirect("/login?next=/calls")
    if not user.may(*READERS):
        return response.html("<h1>403 无权访问</h1><p>您的账号没有此页面的权限。</p>", status=403)
    return response.html(PAGE.read_text(encoding="utf-8"))

"""The embeddable web widget's server side: who may frame /chat, citizens' file uploads.

- `/chat` gets `Content-Security-Policy: frame-ancestors 'self' <channels.web.allowed_origins>`
  (added to the hub's own /chat response by a response-lifecycle signal), so only the bureau's
  sites can embed the chat page that hub/static/widget.js opens in an iframe.
- `POST /api/web/upload` (multipart: `visitor_id`, `file`): jpg/png/gif/webp/pdf recognised by
  their first bytes, at most `channels.web.upload_max_bytes`; kept by core.uploads as
  `<upload_dir>/<YYYY-MM-DD>/<uuid>.<ext>` (+ `<uuid>.json`: whose it is), then recorded as
  the citizen's message through the Dispatcher's normal inbound path. A bad upload gets a 4xx
  with a Chinese reason and stores nothing.
- `GET /api/web/uploads/<date>/<uuid>.<ext>` serves a file back (hub/routes/uploads_serve.py) only to the
  visitor who sent it (`?visitor_id=`) or to logged-in agents, supervisors, inspectors and
  administrators; files other channels kept there (WeChat images and voice) only to those staff.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request, Sanic, response
from sanic.headers import parse_content_header
from sanic.request.form import parse_multipart_form
from sanic.response import HTTPResponse
from sqlalchemy import select

from channels import InboundMessage
from channels.web import CHANNEL, OriginPolicy
from core import uploads
from core.models import Conversation
from core.rate_limit import within_limit
from core.uploads import IMAGE_KINDS, KIND_OF_NAME_EXT, clean_name, human_size, sniff
from hub.headers import page_policy
from hub.routes.uploads_serve import serve as serve_upload

log = logging.getLogger(__name__)

bp = Blueprint("web_widget")

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # boundaries, headers and the visitor_id field around the file
UPLOADS_PER_WINDOW = 20
UPLOAD_WINDOW_SECONDS = 600
ACK_WAIT_SECONDS = 15.0

# what citizens may upload from the web widget (core.uploads keeps more kinds, e.g. WeChat voice)
WEB_KINDS = ("jpg", "png", "gif", "webp", "pdf")
WEB_NAME_EXTS = {name: kind for name, kind in KIND_OF_NAME_EXT.items() if kind in WEB_KINDS}

REASONS = {
    "not_multipart": "请以表单（multipart/form-data）方式上传文件。",
    "bad_form": "上传内容格式错误，无法识别。",
    "bad_visitor": "访客编号不正确，请刷新页面后重试。",
    "no_conversation": "没有找到您的咨询会话，请刷新页面后重试。",
    "no_file": "请选择要上传的文件。",
    "empty": "文件是空的，请重新选择。",
    "too_large": "文件太大了，单个文件不能超过 {limit}。",
    "bad_type": "只支持上传 JPG、PNG、GIF、WEBP 图片或 PDF 文件。",
    "mismatch": "文件内容与扩展名不符（内容是 {actual}，扩展名是 {ext}），请检查后重新上传。",
    "rate": "上传太频繁了，请稍后再试。",
    "server": "系统繁忙，文件未上传成功，请稍后重试。",
    "not_found": "文件不存在或您无权查看。",
}

_background: set[asyncio.Task[Any]] = set()


def fail(status: int, code: str, **values: Any) -> HTTPResponse:
    return response.json({"reason": REASONS[code].format(**values), "code": code}, status=status)


def max_bytes(settings: Any) -> int:
    try:
        return int(settings.get("channels.web.upload_max_bytes") or DEFAULT_MAX_BYTES)
    except (TypeError, ValueError):
        return DEFAULT_MAX_BYTES


def frame_ancestors(policy: OriginPolicy) -> str:
    sources = ["'self'", *policy.allowed]
    if policy.public_url and policy.public_url not in sources:
        sources.append(policy.public_url)
    return "frame-ancestors " + " ".join(sources)


# ------------------------------------------------------------------------------ wiring


@bp.after_server_start
async def configure_web(app: Sanic) -> None:
    policy = OriginPolicy.from_settings(app.ctx.services.settings)
    app.ctx.services.web.set_origin_policy(policy)
    app.ctx.web_frame_ancestors = frame_ancestors(policy)
    log.info("web widget: %s", app.ctx.web_frame_ancestors)


@bp.signal("http.lifecycle.response")
async def chat_framing(request: Request, response: Any) -> None:
    """Only the allowed sites may frame the citizen chat page (the hub's /chat route is not ours)."""
    if request.path != "/chat" or response is None or not hasattr(response, "headers"):
        return
    policy = getattr(request.app.ctx, "web_frame_ancestors", None)
    if policy is None:
        policy = frame_ancestors(OriginPolicy.from_settings(request.app.ctx.settings))
    response.headers["Content-Security-Policy"] = page_policy(policy)


# ------------------------------------------------------------------------------ upload


async def _read_body(request: Request, limit: int) -> tuple[bytes | None, bool]:
    """The streamed body up to `limit` bytes: (body, too_large). A too large body is drained up to a
    bound (so that the client reads our 413), never kept."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit * 4:
        return None, True
    chunks: list[bytes] = []
    total = 0
    too_large = False
    while True:
        chunk = await request.stream.read()
        if chunk is None:
            break
        total += len(chunk)
        if total > limit:
            too_large = True
            chunks.clear()
            if total > limit * 4:
                break
            continue
        chunks.append(chunk)
    return (None if too_large else b"".join(chunks)), too_large


async def _has_conversation(services: Any, visitor_id: str) -> bool:
    async with services.sessions() as session:
        found = await session.execute(
            select(Conversation.id)
            .where(Conversation.channel == CHANNEL, Conversation.channel_user_id == visitor_id)
            .limit(1)
        )
        return found.first() is not None


async def _rate_ok(services: Any, visitor_id: str) -> bool:
    key = services.keys.web_uploads(visitor_id)
    return await within_limit(services.redis, key, UPLOADS_PER_WINDOW, UPLOAD_WINDOW_SECONDS)


async def inbound_until_ack(dispatcher: Any, inbound: InboundMessage) -> Any:
    """Run the normal inbound path; return the stored message as soon as it is committed while
    the bot's answer goes on in the background (it reaches the citizen over the socket)."""
    acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def ack(message: Any) -> None:
        if not acked.done():
            acked.set_result(message)

    task = asyncio.ensure_future(dispatcher.on_inbound(inbound, ack))
    _background.add(task)
    task.add_done_callback(_background.discard)
    done, _ = await asyncio.wait({acked, task}, timeout=ACK_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    if acked.done():
        return acked.result()
    if task in done:
        task.result()  # raises what on_inbound raised
    raise TimeoutError("the message was not committed in time")


@bp.post("/api/web/upload", stream=True)
async def upload(request: Request) -> HTTPResponse:
    services = request.app.ctx.services
    settings = services.settings
    limit = max_bytes(settings)
    content_type, params = parse_content_header(request.headers.get("content-type", ""))
    boundary = params.get("boundary") if content_type == "multipart/form-data" else None
    if not boundary:
        await _read_body(request, 64 * 1024)
        return fail(400, "not_multipart")
    body, too_large = await _read_body(request, limit + MULTIPART_SLACK)
    if too_large or body is None:
        return fail(413, "too_large", limit=human_size(limit))
    try:
        fields, files = parse_multipart_form(body, str(boundary).encode("utf-8"))
    except Exception:
        return fail(400, "bad_form")
    visitor_raw = fields.get("visitor_id") if fields else None
    try:
        # the browser's credential; the conversation, the file's owner and staff know its public id
        visitor_id = services.web.public_id(str(uuid.UUID(str(visitor_raw or ""))))
    except ValueError:
        return fail(400, "bad_visitor")
    if not await _has_conversation(services, visitor_id):
        return fail(403, "no_conversation")
    file = files.get("file") if files else None
    if file is None:
        return fail(400, "no_file")
    data: bytes = file.body or b""
    if not data:
        return fail(400, "empty")
    if len(data) > limit:
        return fail(413, "too_large", limit=human_size(limit))
    kind = sniff(data)
    if kind not in WEB_KINDS:
        return fail(415, "bad_type")
    name = clean_name(file.name, kind)
    ext = Path(name).suffix.lower()
    if ext and ext in WEB_NAME_EXTS and WEB_NAME_EXTS[ext] != kind:
        return fail(415, "mismatch", actual=kind.upper(), ext=ext)
    if ext and ext not in WEB_NAME_EXTS:
        return fail(415, "bad_type")
    if not await _rate_ok(services, visitor_id):
        return fail(429, "rate")

    try:
        stored = await uploads.keep(settings, data, kind, name, {"visitor_id": visitor_id})
    except OSError:
        log.exception("could not store an upload")
        return fail(500, "server")
    attachment = stored.attachment
    is_image = kind in IMAGE_KINDS
    inbound = InboundMessage(
        channel=CHANNEL,
        channel_user_id=visitor_id,
        text="[图片]" if is_image else f"[文件] {name}",
        channel_message_id=f"{visitor_id}:upload:{stored.path.stem}",
        kind="image" if is_image else "file",
        meta={"attachment": attachment},
    )
    try:
        message = await inbound_until_ack(services.dispatcher, inbound)
    except TimeoutError:
        # still on its way into the database (it may yet be recorded): keep the file it will point at
        log.error("an upload's message was not committed within %ss", ACK_WAIT_SECONDS)
        return fail(503, "server")
    except Exception:
        log.exception("an upload could not be recorded")
        await uploads.discard(stored)
        return fail(500, "server")
    return response.json({"message": message.to_json(), "attachment": attachment}, status=201)


# ------------------------------------------------------------------------------ download


@bp.get("/api/web/uploads/<day:str>/<name:str>")
async def uploaded_file(request: Request, day: str, name: str) -> HTTPResponse:
    served = await serve_upload(request, day, name)
    return served if served is not None else fail(404, "not_found")

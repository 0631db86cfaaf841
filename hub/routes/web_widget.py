"""The embeddable web widget's server side: who may frame /chat, citizens' file uploads.

- `/chat` gets `Content-Security-Policy: frame-ancestors 'self' <channels.web.allowed_origins>`
  (added to the hub's own /chat response by a response-lifecycle signal), so only the bureau's
  sites can embed the chat page that hub/static/widget.js opens in an iframe.
- `POST /api/web/upload` (multipart: `visitor_id`, `file`): jpg/png/gif/webp/pdf recognised by
  their first bytes, at most `channels.web.upload_max_bytes`; stored as
  `<upload_dir>/<YYYY-MM-DD>/<uuid>.<ext>` (+ `<uuid>.json`: whose it is), then recorded as
  the citizen's message through the Dispatcher's normal inbound path. A bad upload gets a 4xx
  with a Chinese reason and stores nothing.
- `GET /api/web/uploads/<date>/<uuid>.<ext>` serves a file back only to the visitor who sent it
  (`?visitor_id=`) or to logged-in agents, supervisors, inspectors and administrators.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sanic import Blueprint, Request, Sanic, response
from sanic.headers import parse_content_header
from sanic.request.form import parse_multipart_form
from sanic.response import HTTPResponse
from sqlalchemy import select

from channels import InboundMessage
from channels.web import CHANNEL, OriginPolicy
from hub.app import current_user
from hub.config import PROJECT_ROOT
from hub.models import Conversation
from hub.rate_limit import within_limit

log = logging.getLogger(__name__)

bp = Blueprint("web_widget")

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # boundaries, headers and the visitor_id field around the file
UPLOADS_PER_WINDOW = 20
UPLOAD_WINDOW_SECONDS = 600
ACK_WAIT_SECONDS = 15.0

# type -> (extensions a citizen's file name may carry, the one we store, MIME type, label)
TYPES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "jpg": ((".jpg", ".jpeg", ".jfif"), "jpg", "image/jpeg"),
    "png": ((".png",), "png", "image/png"),
    "gif": ((".gif",), "gif", "image/gif"),
    "webp": ((".webp",), "webp", "image/webp"),
    "pdf": ((".pdf",), "pdf", "application/pdf"),
}
MIME_OF_EXT = {ext: mime for _names, ext, mime in TYPES.values()}

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


def sniff(data: bytes) -> str | None:
    """The file's real type from its first bytes (never from its name)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:1024].lstrip(b"\r\n\t ").startswith(b"%PDF-"):
        return "pdf"
    return None


def clean_name(name: str | None, kind: str) -> str:
    """A display name safe to show anywhere: no path, no control characters, at most 100 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return name[:100] or f"未命名.{TYPES[kind][1]}"


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB".replace(".0 MB", " MB")
    return f"{max(1, round(size / 1024))} KB"


def upload_root(settings: Any) -> Path:
    root = Path(str(settings.get("channels.web.upload_dir") or "var/uploads"))
    return root if root.is_absolute() else PROJECT_ROOT / root


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
    response.headers["Content-Security-Policy"] = policy


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
    key = f"{services.keys.prefix}web:uploads:{visitor_id}"
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
        visitor_id = str(uuid.UUID(str(visitor_raw or "")))
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
    if kind is None:
        return fail(415, "bad_type")
    name = clean_name(file.name, kind)
    ext = Path(name).suffix.lower()
    known_exts = {e: k for k, (names, _s, _m) in TYPES.items() for e in names}
    if ext and ext in known_exts and known_exts[ext] != kind:
        return fail(415, "mismatch", actual=kind.upper(), ext=ext)
    if ext and ext not in known_exts:
        return fail(415, "bad_type")
    if not await _rate_ok(services, visitor_id):
        return fail(429, "rate")

    stored_ext, mime = TYPES[kind][1], TYPES[kind][2]
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    file_id = uuid.uuid4().hex
    folder = upload_root(settings) / day
    path = folder / f"{file_id}.{stored_ext}"
    owner_path = folder / f"{file_id}.json"
    url = f"/api/web/uploads/{day}/{file_id}.{stored_ext}"
    is_image = kind != "pdf"
    attachment = {"url": url, "name": name, "type": mime, "size": len(data)}
    try:
        await asyncio.to_thread(_store, folder, path, owner_path, data, {"visitor_id": visitor_id, **attachment})
    except OSError:
        log.exception("could not store an upload")
        return fail(500, "server")
    inbound = InboundMessage(
        channel=CHANNEL,
        channel_user_id=visitor_id,
        text="[图片]" if is_image else f"[文件] {name}",
        channel_message_id=f"{visitor_id}:upload:{file_id}",
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
        await asyncio.to_thread(_unlink, path, owner_path)
        return fail(500, "server")
    return response.json({"message": message.to_json(), "attachment": attachment}, status=201)


def _store(folder: Path, path: Path, owner_path: Path, data: bytes, owner: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for target, content in ((owner_path, json.dumps(owner, ensure_ascii=False).encode("utf-8")), (path, data)):
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(content)
        partial.replace(target)


def _unlink(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# ------------------------------------------------------------------------------ download

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^([0-9a-f]{32})\.(jpg|png|gif|webp|pdf)$")


@bp.get("/api/web/uploads/<day:str>/<name:str>")
async def uploaded_file(request: Request, day: str, name: str) -> HTTPResponse:
    services = request.app.ctx.services
    match = _NAME.match(name)
    if not _DAY.match(day) or match is None:
        return fail(404, "not_found")
    folder = upload_root(services.settings) / day
    path, owner_path = folder / name, folder / f"{match.group(1)}.json"
    try:
        owner = json.loads(await asyncio.to_thread(owner_path.read_text, encoding="utf-8"))
    except (OSError, ValueError):
        return fail(404, "not_found")
    visitor = request.args.get("visitor_id") or request.headers.get("x-visitor-id") or ""
    allowed = bool(visitor) and visitor == owner.get("visitor_id")
    if not allowed:
        user = await current_user(request)
        # staff who handle or inspect conversations (not, e.g., a KB editor)
        allowed = user is not None and user.may("agent", "supervisor", "inspector")
    if not allowed or not path.is_file():
        return fail(404, "not_found")
    ext = match.group(2)
    headers = {
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(str(owner.get('name') or name))}",
    }
    if ext != "pdf":  # an image opened on its own can run nothing (the PDF viewer needs no such fence)
        headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    return await response.file(path, mime_type=MIME_OF_EXT[ext], headers=headers)

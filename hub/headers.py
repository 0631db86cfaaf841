"""Response headers every page gets, and the body limit of routes a stranger can reach (issue #12,
Security 4 and the findings list).

- A Content-Security-Policy on every HTML page: scripts, styles and connections only from the hub
  itself (the two inline `onsubmit="return false"` handlers of kb.html are allowed by their hash);
  staff pages may not be framed at all (frame-ancestors 'none' + X-Frame-Options: DENY); the citizen's
  /chat may be framed by the sites in channels.web.allowed_origins (hub/routes/web_widget.py).
- nosniff and a same-origin referrer policy on every response.
- A request without a staff session (or, on /actions/webhook, Rasa's token: a long conversation's
  tracker is large) may send at most 64 KB (the Telegram webhook its own telegram.max_body_bytes; the
  streamed citizen upload checks its own limit), instead of the 20 MB a KB import may send: a stranger
  cannot make a worker buffer large bodies.
- `GET /static/` (a directory) answers 404, not 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Request, Sanic, response
from sanic.exceptions import PayloadTooLarge
from sanic.response import HTTPResponse

from core.config import Settings

PUBLIC_BODY_LIMIT = 64 * 1024
STAFF_PAGES = ("/agent", "/kb", "/supervisor", "/tickets", "/login")
# kb.html's inline `onsubmit="return false"` (sha256 of the attribute's text)
INLINE_HANDLER_HASHES = ("'sha256-GZIcz60Uwd6wT3vaYke/atSr53TehbYAPepOa3d03Vw='",)


def page_policy(frame_ancestors: str) -> str:
    """The CSP of an HTML page; `frame_ancestors` is the whole directive ("frame-ancestors 'none'")."""
    return "; ".join((
        frame_ancestors,
        "default-src 'self'",
        "script-src 'self' 'unsafe-hashes' " + " ".join(INLINE_HANDLER_HASHES),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ))


STAFF_POLICY = page_policy("frame-ancestors 'none'")


def add_security_headers(request: Request, reply: HTTPResponse) -> None:
    headers = reply.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not (reply.content_type or "").startswith("text/html"):
        return
    if request.path == "/chat":
        # the widget's host sites may frame the citizen's chat (web_widget.chat_framing sets that
        # directive); everything else is the hub's own policy
        framing = getattr(request.app.ctx, "web_frame_ancestors", None) or "frame-ancestors 'self'"
        headers["Content-Security-Policy"] = page_policy(framing)
        return
    headers["Content-Security-Policy"] = STAFF_POLICY
    headers["X-Frame-Options"] = "DENY"


def body_limits(settings: Settings) -> dict[str, int]:
    """Per-path limits of the public routes that may legitimately send more than 64 KB."""
    return {"/telegram/webhook": int(settings.get("telegram.max_body_bytes") or 1024 * 1024)}


def install(app: Sanic, settings: Settings, may_send_much: Callable[[Request], Awaitable[bool]]) -> None:
    """Register the headers, the public body limit and the /static/ 404 on `app`."""
    limits = body_limits(settings)

    @app.on_response(priority=-100)
    async def security_headers(request: Request, reply: HTTPResponse) -> None:
        add_security_headers(request, reply)

    @app.signal("http.routing.after")
    async def cap_public_bodies(request: Request, route: Any, kwargs: Any, handler: Any) -> None:
        stream = request.stream
        if stream is None or not getattr(stream, "request_body", None) or hasattr(handler, "is_stream"):
            return
        limit = limits.get(request.path, PUBLIC_BODY_LIMIT)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) <= limit:
            return
        if await may_send_much(request):
            return  # a KB or CRM import, Rasa's tracker: up to REQUEST_MAX_SIZE
        stream.request_max_size = limit

    @app.exception(IsADirectoryError)
    async def no_directory_listing(_request: Request, _error: Exception) -> HTTPResponse:
        # GET /static/ (Sanic's static handler raises this for a directory: it was a 500)
        return response.json({"reason": "没有找到该文件。", "code": "not_found"}, status=404)

    @app.exception(PayloadTooLarge)
    async def too_large(_request: Request, _error: Exception) -> HTTPResponse:
        return response.json({"reason": "请求内容过大。", "code": "too_large"}, status=413)

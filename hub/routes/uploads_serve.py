"""Serving a kept citizen file back (`GET /api/web/uploads/<day>/<name>`): only to the web visitor
who sent it or to staff who handle or inspect conversations. The store itself is `core.uploads`."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from sanic import Request, response
from sanic.response import HTTPResponse

from core.uploads import DAY_PATTERN, FENCE, MIME_OF_EXT, NAME_PATTERN, upload_root
from hub.app import current_user


async def serve(request: Request, day: str, name: str) -> HTTPResponse | None:
    """`GET /api/web/uploads/<day>/<name>`: the file, or None when it does not exist or the asker may
    not see it (the caller answers 404 either way, so a stranger learns nothing)."""
    match = NAME_PATTERN.match(name)
    if not DAY_PATTERN.match(day) or match is None:
        return None
    folder = upload_root(request.app.ctx.services.settings) / day
    path, owner_path = folder / name, folder / f"{match.group(1)}.json"
    try:
        owner = json.loads(await asyncio.to_thread(owner_path.read_text, encoding="utf-8"))
    except (OSError, ValueError):
        return None
    visitor = request.args.get("visitor_id") or request.headers.get("x-visitor-id") or ""
    # the owner is kept by the visitor's public id (files kept before: by the credential itself)
    allowed = bool(visitor) and owner.get("visitor_id") in (request.app.ctx.services.web.public_id(visitor), visitor)
    if not allowed:
        user = await current_user(request)
        # staff who handle or inspect conversations (not, e.g., a KB editor)
        allowed = user is not None and user.may("agent", "supervisor", "inspector")
    if not allowed or not path.is_file():
        return None
    ext = match.group(2)
    headers = {
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(str(owner.get('name') or name))}",
    }
    if ext != "pdf":
        headers["Content-Security-Policy"] = FENCE
    return await response.file(path, mime_type=MIME_OF_EXT[ext], headers=headers)

"""Phone and ID numbers that citizens type, masked for staff without the right (core.masking) on the
way out of the hub: the agent console's socket and the staff APIs that carry citizens' words (CRM
records and tickets, the handoff board and lists). One place, so no route or frame can forget it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from core.masking import mask_json, sees_numbers

# API prefixes whose answers hold what citizens typed (the KB API holds the bureau's own texts).
CITIZEN_TEXT_PREFIXES = ("/api/crm/", "/api/handoff/", "/api/qa/")
# the bureau's own texts (快捷回复, 智能推荐's KB answers): a service number in them stays whole
OWN_TEXTS = ("/api/handoff/canned",)
# deliberate, audited reveals for the one person who needs the number (a 请回电 ticket's assignee)
REVEALS = ("/callback_phone",)
ASSIST_FRAME = "assist"  # KB answers for the agent: only the citizen's question in it is masked


def mask_frame(text: str) -> str:
    """One JSON frame with every string in it masked (not JSON: masked as text)."""
    try:
        data = json.loads(text)
    except ValueError:
        return str(mask_json(text))
    if isinstance(data, dict) and data.get("type") == ASSIST_FRAME:
        masked = {**data, "text": mask_json(data.get("text"))}
        return json.dumps(masked, ensure_ascii=False, default=str)
    return json.dumps(mask_json(data), ensure_ascii=False, default=str)


class MaskedSocket:
    """A staff WebSocket whose outgoing frames are masked; everything else is the socket itself."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, data: Any) -> None:
        await self._ws.send(mask_frame(data) if isinstance(data, str) else data)

    def __aiter__(self) -> Any:
        return self._ws.__aiter__()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


def install(app: Sanic, role_of: Callable[[Request], Awaitable[str | None]]) -> None:
    @app.on_response(priority=10)
    async def mask_citizen_numbers(request: Request, reply: HTTPResponse) -> None:
        path = request.path
        exempt = path.startswith(OWN_TEXTS) or path.endswith(REVEALS)
        if not path.startswith(CITIZEN_TEXT_PREFIXES) or exempt or not reply.body:
            return
        if not (reply.content_type or "").startswith("application/json"):
            return
        role = await role_of(request)
        if role is None or sees_numbers(role):
            return
        try:
            data = json.loads(reply.body)
        except ValueError:
            return
        body = json.dumps(mask_json(data), ensure_ascii=False, default=str).encode("utf-8")
        reply.body = body
        reply.headers["content-length"] = str(len(body))

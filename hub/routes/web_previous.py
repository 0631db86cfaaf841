"""The citizen's previous, ended web conversation, so that a reload after 结束会话 does not lose the
agent's answers: `GET /api/web/previous?visitor_id=<id>&exclude=<current conversation id>`.

The chat page shows it read-only above the new conversation (hub/static/chat.js). The visitor id is
the same secret the chat socket's `hello` uses (looked up by the public id derived from it); only
what the citizen saw is returned (no internal notes or whispers). Nothing found: `{"messages": []}`.
"""

from __future__ import annotations

import json
import uuid

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse
from sqlalchemy import select

from channels.web import CHANNEL
from core.models import Conversation
from core.secrets import public_visitor_id
from hub.app import error, services_of

bp = Blueprint("web_previous")


@bp.get("/api/web/previous")
async def previous(request: Request) -> HTTPResponse:
    try:
        visitor_id = str(uuid.UUID(request.args.get("visitor_id", "")))
    except ValueError:
        return error(400, "访客标识不正确。", "bad_visitor")
    exclude = request.args.get("exclude", "")
    services = services_of(request)
    # conversations are kept under the id derived from the browser's secret (core.secrets), never the secret
    citizen = public_visitor_id(services.settings.secret_key, visitor_id)
    async with services.sessions() as session:
        found = (
            await session.execute(
                select(Conversation.id, Conversation.closed_at)
                .where(
                    Conversation.channel == CHANNEL,
                    Conversation.channel_user_id == citizen,
                    Conversation.status == "closed",
                    Conversation.id != exclude,
                )
                .order_by(Conversation.started_at.desc())
                .limit(1)
            )
        ).first()
    if found is None:
        return response.json({"messages": []})
    conversation_id, closed_at = found
    lines = await services.conversations.transcript(conversation_id)
    return response.json(
        {
            "conversation_id": conversation_id,
            "closed_at": closed_at.isoformat() if closed_at else None,
            "messages": [m.to_json() for m in lines if not m.internal],
        },
        dumps=_dumps,
    )


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)

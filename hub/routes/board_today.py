"""Today's figures for the 班长看板 (`GET /api/supervisor/today`): conversations started today, how many
the bot handled on its own (never handed to a person), citizens who gave up waiting, and the day's
满意度 — "today" in the bureau's time zone (handoff.working_hours.timezone). Waiting-now comes from
the live board itself."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse
from sqlalchemy import func, or_, select

from core.models import Conversation, ConversationEvent, CsatRating
from hub.app import services_of
from hub.auth import StaffUser
from hub.routes.access import staff_only

bp = Blueprint("board_today")


def day_start(settings: Any, now: datetime | None = None) -> datetime:
    """Midnight today in the bureau's zone, as a UTC moment (the records keep UTC)."""
    zone = ZoneInfo(str(settings.get("handoff.working_hours.timezone", "Asia/Shanghai")))
    local = (now or datetime.now(UTC)).astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(UTC)


@bp.get("/api/supervisor/today")
@staff_only(("supervisor",), "无权查看今日数据。")
async def today(request: Request, user: StaffUser) -> HTTPResponse:
    services = services_of(request)
    since = day_start(services.settings)
    async with services.sessions() as session:
        started = (await session.execute(
            select(func.count()).select_from(Conversation).where(Conversation.started_at >= since)
        )).scalar_one()
        handed = (await session.execute(
            select(func.count(func.distinct(ConversationEvent.conversation_id)))
            .join(Conversation, Conversation.id == ConversationEvent.conversation_id)
            .where(Conversation.started_at >= since, ConversationEvent.kind == "request_human")
        )).scalar_one()
        # gave up waiting: left the queue themselves, without leaving a 留言
        abandoned = (await session.execute(
            select(func.count()).select_from(ConversationEvent).where(
                ConversationEvent.created_at >= since,
                ConversationEvent.kind == "cancel_queue",
                ConversationEvent.actor == "citizen",
                or_(ConversationEvent.data["reason"].as_string().is_(None),
                    ConversationEvent.data["reason"].as_string() != "left_message"),
            )
        )).scalar_one()
        average, rated = (await session.execute(
            select(func.avg(CsatRating.score), func.count()).where(CsatRating.created_at >= since)
        )).one()
    return response.json(
        {
            "conversations": started,
            "handed_off": handed,
            "bot_only": max(0, started - handed),
            "containment": round((started - handed) / started, 3) if started else None,
            "abandoned": abandoned,
            "csat_average": round(float(average), 2) if average is not None else None,
            "csat_count": rated,
        }
    )

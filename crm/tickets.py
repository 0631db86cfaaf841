"""Tickets (工单): created by agents or from a citizen's 留言; status, assignee, group, due time,
the first-response SLA, replies, and the overdue list.

A ticket is overdue while it is active (待处理 / 处理中) and either nobody has answered the
citizen by its first-response deadline (`response_due_at`, 24 h after creation by default:
`crm.ticket_first_response_hours`), or its due time (`due_at`) has passed. Every step (reply,
status change, new assignee) is a `TicketEvent` row, so a ticket's history is never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import Refusal
from core.models import Citizen, Conversation, Ticket, TicketEvent, User

STATUS_LABELS = {"open": "待处理", "processing": "处理中", "resolved": "已解决", "closed": "已关闭"}
ACTIVE = ("open", "processing")
MAX_TITLE = 200
MAX_BODY = 5000
MAX_REPLY = 2000
MAX_GROUP = 64
BEIJING = ZoneInfo("Asia/Shanghai")


class TicketError(Refusal):
    """A ticket change refused; ``field`` names the form field at fault, when one is."""

    def __init__(self, status: int, reason: str, code: str, field: str = "") -> None:
        super().__init__(status, reason, code)
        self.field = field


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time the hub stores is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TicketPolicy:
    response_hours: float = 24.0  # first-response SLA
    due_hours: float = 24.0  # default due time of a new ticket

    @classmethod
    def from_settings(cls, settings: Any) -> TicketPolicy:
        fallback = float(settings.get("handoff.ticket_due_hours", 24))
        return cls(
            response_hours=float(settings.get("crm.ticket_first_response_hours", fallback)),
            due_hours=float(settings.get("crm.ticket_due_hours", fallback)),
        )


@dataclass(frozen=True)
class TicketView:
    id: int
    citizen_id: int
    citizen_name: str | None
    conversation_id: str | None
    title: str
    body: str
    status: str
    group: str | None
    assignee_id: int | None
    assignee_name: str | None
    source: str
    due_at: datetime
    response_due_at: datetime
    first_response_at: datetime | None
    created_at: datetime
    updated_at: datetime | None

    def overdue_reason(self, now: datetime) -> str | None:
        """Why the ticket is overdue now, in Chinese, or None."""
        if self.status not in ACTIVE:
            return None
        if self.first_response_at is None and now > self.response_due_at:
            return "超过首次响应时限"
        if now > self.due_at:
            return "超过处理期限"
        return None

    def next_deadline(self) -> datetime | None:
        """The deadline that matters now (first response while unanswered, else the due time)."""
        if self.status not in ACTIVE:
            return None
        if self.first_response_at is None:
            return min(self.response_due_at, self.due_at)
        return self.due_at

    def to_json(self, now: datetime) -> dict[str, Any]:
        deadline = self.next_deadline()
        reason = self.overdue_reason(now)
        return {
            "id": self.id,
            "citizen_id": self.citizen_id,
            "citizen_name": self.citizen_name,
            "conversation_id": self.conversation_id,
            "title": self.title,
            "body": self.body,
            "status": self.status,
            "status_label": STATUS_LABELS.get(self.status, self.status),
            "group": self.group,
            "assignee_id": self.assignee_id,
            "assignee_name": self.assignee_name,
            "source": self.source,
            "due_at": self.due_at.isoformat(),
            "response_due_at": self.response_due_at.isoformat(),
            "first_response_at": self.first_response_at.isoformat() if self.first_response_at else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "overdue": reason is not None,
            "overdue_reason": reason,
            "deadline": deadline.isoformat() if deadline else None,
            "seconds_to_deadline": round((deadline - now).total_seconds()) if deadline else None,
        }


def _view(ticket: Ticket, citizen_name: str | None, assignee_name: str | None) -> TicketView:
    created = as_utc(ticket.created_at)
    assert created is not None
    due = as_utc(ticket.due_at) or created
    return TicketView(
        ticket.id, ticket.citizen_id, citizen_name, ticket.conversation_id, ticket.title, ticket.body, ticket.status,
        ticket.group, ticket.assignee_id, assignee_name, ticket.source or "message", due,
        as_utc(ticket.response_due_at) or due, as_utc(ticket.first_response_at), created, as_utc(ticket.updated_at),
    )


async def add_message_ticket(
    session: AsyncSession,
    *,
    citizen_id: int,
    conversation_id: str,
    text: str,
    group: str | None,
    due_hours: float,
    now: datetime,
) -> int:
    """A citizen's 留言 becomes a ticket inside the caller's transaction (handoff's leave_message)."""
    due = now + timedelta(hours=due_hours)
    ticket = Ticket(
        citizen_id=citizen_id, conversation_id=conversation_id, title=f"留言：{text[:40]}", body=text,
        status="open", group=group, due_at=due, response_due_at=due, created_at=now, updated_at=now,
        source="message",
    )
    session.add(ticket)
    await session.flush()
    session.add(TicketEvent(ticket_id=ticket.id, kind="created", text="", data={"source": "message"}, created_at=now))
    return ticket.id


async def _survivor(session: AsyncSession, citizen_id: int) -> int:
    """The profile a citizen id stands for now (a merged-away profile's survivor)."""
    citizen = await session.get(Citizen, citizen_id)
    return citizen.merged_into if citizen is not None and citizen.merged_into is not None else citizen_id


async def conversation_of_citizen(session: AsyncSession, conversation_id: str, citizen_id: int) -> bool:
    """True when the conversation is this citizen's (merges followed): a ticket may name, and post its
    reply into, only its own citizen's conversation, never another citizen's."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return False
    return await _survivor(session, conversation.citizen_id) == await _survivor(session, citizen_id)


def _text(value: Any, field: str, label: str, limit: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise TicketError(400, f"{label}不能为空。", "bad_field", field)
    value = value.strip()
    if len(value) > limit:
        raise TicketError(400, f"{label}不能超过 {limit} 个字。", "bad_field", field)
    return value


def parse_moment(value: Any, field: str = "due_at") -> datetime:
    """An ISO 8601 time from a form (a time without an offset is Beijing time)."""
    if not isinstance(value, str) or not value.strip():
        raise TicketError(400, "请填写处理期限。", "bad_field", field)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise TicketError(400, "处理期限格式不正确（例如 2026-12-01 17:30）。", "bad_field", field) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    return moment.astimezone(UTC)



class TicketDesk:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policy: TicketPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.sessions = sessions
        self.policy = policy or TicketPolicy()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ reading
    def _select(self) -> Any:
        assignee = User.__table__.alias("assignee")
        return (
            select(Ticket, Citizen.name, assignee.c.display_name)
            .join(Citizen, Citizen.id == Ticket.citizen_id)
            .outerjoin(assignee, assignee.c.id == Ticket.assignee_id)
        )

    async def get(self, ticket_id: int) -> TicketView | None:
        async with self.sessions() as session:
            row = (await session.execute(self._select().where(Ticket.id == ticket_id))).first()
        return None if row is None else _view(*row)

    async def list(
        self,
        *,
        status: str | None = None,
        assignee_id: int | None = None,
        unassigned: bool = False,
        overdue: bool = False,
        citizen_ids: list[int] | None = None,
        group: str | None = None,
        limit: int = 500,
    ) -> list[TicketView]:
        """Tickets, soonest deadline first; `status` "active" means 待处理 + 处理中."""
        query = self._select()
        if status == "active":
            query = query.where(Ticket.status.in_(ACTIVE))
        elif status:
            query = query.where(Ticket.status == status)
        if assignee_id is not None:
            query = query.where(Ticket.assignee_id == assignee_id)
        if unassigned:
            query = query.where(Ticket.assignee_id.is_(None))
        if citizen_ids is not None:
            query = query.where(Ticket.citizen_id.in_(citizen_ids))
        if group:
            query = query.where(Ticket.group == group)
        if overdue:
            now = self.clock()
            query = query.where(
                Ticket.status.in_(ACTIVE),
                or_(Ticket.due_at < now, and_(Ticket.first_response_at.is_(None), Ticket.response_due_at < now)),
            )
        query = query.order_by(Ticket.due_at, Ticket.id).limit(limit)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [_view(*row) for row in rows]

    async def open_for_citizen(self, citizen_id: int) -> list[TicketView]:
        return await self.list(status="active", citizen_ids=[citizen_id], limit=20)

    async def events(self, ticket_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(TicketEvent, User.display_name)
                    .outerjoin(User, User.id == TicketEvent.user_id)
                    .where(TicketEvent.ticket_id == ticket_id)
                    .order_by(TicketEvent.id)
                )
            ).all()
        return [
            {
                "id": event.id,
                "kind": event.kind,
                "text": event.text,
                "data": event.data or {},
                "user": name,
                "created_at": as_utc(event.created_at).isoformat(),  # type: ignore[union-attr]
            }
            for event, name in rows
        ]

    # ------------------------------------------------------------------ writing
    async def create(
        self,
        data: Any,
        *,
        created_by: int | None,
        conversation_id: str | None = None,
    ) -> TicketView:
        """An agent's ticket: {citizen_id, title, body, group?, assignee_id?, due_at?} checked; 4xx on bad input."""
        if not isinstance(data, dict):
            raise TicketError(400, "请求内容不完整。", "bad_json")
        citizen_id = data.get("citizen_id")
        if not isinstance(citizen_id, int) or isinstance(citizen_id, bool):
            raise TicketError(400, "请选择工单对应的客户。", "bad_field", "citizen_id")
        title = _text(data.get("title"), "title", "工单标题", MAX_TITLE, required=True)
        body = _text(data.get("body"), "body", "工单内容", MAX_BODY, required=False)
        group = _text(data.get("group"), "group", "技能组", MAX_GROUP, required=False) or None
        now = self.clock()
        response_due = now + timedelta(hours=self.policy.response_hours)
        due = parse_moment(data["due_at"]) if data.get("due_at") else now + timedelta(hours=self.policy.due_hours)
        if due <= now:
            raise TicketError(400, "处理期限必须晚于现在。", "bad_field", "due_at")
        conversation_id = conversation_id or (data.get("conversation_id") or None)
        if conversation_id is not None and not isinstance(conversation_id, str):
            raise TicketError(400, "会话编号不正确。", "bad_field", "conversation_id")
        async with self.sessions() as session, session.begin():
            citizen = await session.get(Citizen, citizen_id)
            if citizen is None:
                raise TicketError(404, "没有找到该客户。", "not_found", "citizen_id")
            if citizen.merged_into is not None:
                citizen_id = citizen.merged_into  # a merged-away profile: the ticket goes to the survivor
            if conversation_id is not None and not await conversation_of_citizen(session, conversation_id, citizen_id):
                raise TicketError(400, "该会话不属于此工单的客户。", "bad_field", "conversation_id")
            assignee_id = await self._assignee(session, data.get("assignee_id"))
            ticket = Ticket(
                citizen_id=citizen_id, conversation_id=conversation_id, title=title, body=body or title,
                status="open", group=group, assignee_id=assignee_id, due_at=due, response_due_at=response_due,
                created_at=now, updated_at=now, source="agent", created_by=created_by,
            )
            session.add(ticket)
            await session.flush()
            session.add(TicketEvent(ticket_id=ticket.id, user_id=created_by, kind="created",
                                    data={"source": "agent", "assignee_id": assignee_id}, created_at=now))
            ticket_id = ticket.id
        found = await self.get(ticket_id)
        assert found is not None
        return found

    async def reply_conversation(self, ticket: TicketView) -> str | None:
        """The conversation a ticket's reply may be posted into: its own, and only while that
        conversation is still its citizen's (checked again at send time, whatever the row says)."""
        if not ticket.conversation_id:
            return None
        async with self.sessions() as session:
            if await conversation_of_citizen(session, ticket.conversation_id, ticket.citizen_id):
                return ticket.conversation_id
        return None

    async def _assignee(self, session: AsyncSession, value: Any) -> int | None:
        if value in (None, ""):
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise TicketError(400, "处理人不正确。", "bad_field", "assignee_id")
        user = await session.get(User, value)
        if user is None or user.role not in ("agent", "supervisor", "admin"):
            raise TicketError(400, "处理人不存在或不是坐席。", "bad_field", "assignee_id")
        return value

    async def update(self, ticket_id: int, data: Any, *, user_id: int | None) -> tuple[TicketView, list[str]]:
        """Change status / assignee / group / due time and/or add a reply; returns (ticket, what changed)."""
        if not isinstance(data, dict) or not data:
            raise TicketError(400, "请求内容不完整。", "bad_json")
        unknown = set(data) - {"status", "assignee_id", "group", "due_at", "reply"}
        if unknown:
            raise TicketError(400, "不支持修改该字段。", "bad_field", sorted(unknown)[0])
        status = data.get("status")
        if status is not None and status not in STATUS_LABELS:
            raise TicketError(400, "状态只能是待处理、处理中、已解决或已关闭。", "bad_field", "status")
        reply = _text(data.get("reply"), "reply", "答复内容", MAX_REPLY, required=False) if "reply" in data else ""
        if "reply" in data and not reply:
            raise TicketError(400, "答复内容不能为空。", "bad_field", "reply")
        group = _text(data.get("group"), "group", "技能组", MAX_GROUP, required=False) if "group" in data else None
        due = parse_moment(data["due_at"]) if "due_at" in data else None
        now = self.clock()
        changed: list[str] = []
        async with self.sessions() as session, session.begin():
            ticket = await session.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                raise TicketError(404, "没有找到该工单。", "not_found")
            if "assignee_id" in data:
                assignee = await self._assignee(session, data["assignee_id"])
                if assignee != ticket.assignee_id:
                    session.add(TicketEvent(ticket_id=ticket_id, user_id=user_id, kind="assign", created_at=now,
                                            data={"from": ticket.assignee_id, "to": assignee}))
                    ticket.assignee_id = assignee
                    changed.append("assignee_id")
            if group is not None and (group or None) != ticket.group:
                session.add(TicketEvent(ticket_id=ticket_id, user_id=user_id, kind="group", created_at=now,
                                        data={"from": ticket.group, "to": group or None}))
                ticket.group = group or None
                changed.append("group")
            if due is not None and due != as_utc(ticket.due_at):
                session.add(TicketEvent(ticket_id=ticket_id, user_id=user_id, kind="due", created_at=now,
                                        data={"from": as_utc(ticket.due_at).isoformat(),  # type: ignore[union-attr]
                                              "to": due.isoformat()}))
                ticket.due_at = due
                changed.append("due_at")
            if reply:
                session.add(TicketEvent(ticket_id=ticket_id, user_id=user_id, kind="reply", text=reply,
                                        created_at=now))
                if ticket.first_response_at is None:
                    ticket.first_response_at = now
                changed.append("reply")
                if ticket.status == "open" and status is None:
                    status = "processing"  # answering the citizen starts the work
            if status is not None and status != ticket.status:
                session.add(TicketEvent(ticket_id=ticket_id, user_id=user_id, kind="status", created_at=now,
                                        data={"from": ticket.status, "to": status}))
                ticket.status = status
                if status in ("resolved", "closed"):
                    ticket.resolved_at = ticket.resolved_at or now
                    ticket.first_response_at = ticket.first_response_at or now
                else:
                    ticket.resolved_at = None
                changed.append("status")
            if changed:
                ticket.updated_at = now
        view = await self.get(ticket_id)
        assert view is not None
        return view, changed

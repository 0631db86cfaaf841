"""The relational schema: every record the hub keeps, in one metadata so that one Alembic history
covers all packages. Each domain that adds tables does so in its own module here (`core/models/<domain>.py`),
imported at the bottom of this file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base as Base  # re-exported: `from core.models import Base`
from core.models.base import utcnow as utcnow  # re-exported: `from core.models import utcnow`


class User(Base):
    """Staff: agents, KB editors, supervisors, inspectors, administrators."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # added in 0040 (security): a disabled account cannot log in; an initial or reset password must be
    # changed at the next login; skill groups (技能组) the admin page sets
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    skill_groups: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    password_changed_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime | None] = mapped_column()


class Citizen(Base):
    __tablename__ = "citizens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    id_number: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list[str]] = mapped_column(default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # added in 0030 (CRM): address, VIP and flag, and the profile this one was merged into (kept as a tombstone)
    address: Mapped[str] = mapped_column(String(200), default="", server_default="")
    vip: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    updated_at: Mapped[datetime | None] = mapped_column()


class CitizenIdentity(Base):
    """One way of recognising a citizen: a web visitor id, a WeChat openid, a phone number."""

    __tablename__ = "citizen_identities"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identity_kind_value"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(128))


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_citizen_started", "citizen_id", "started_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    channel: Mapped[str] = mapped_column(String(32))
    channel_user_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open / closed
    owner: Mapped[str] = mapped_column(String(16), default="bot")  # bot / queued / agent
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    group: Mapped[str | None] = mapped_column(String(64))
    disposition: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    # added in 0010: the ownership version (handoff.state) this record reflects; older ones never overwrite it
    state_version: Mapped[int | None] = mapped_column(BigInteger)


class Message(Base):
    """One line of a transcript, from anyone; kept for QA."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "channel_message_id", name="uq_message_channel_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    channel_message_id: Mapped[str | None] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(16))  # citizen / bot / agent / system
    sender_name: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationEvent(Base):
    """Every ownership transition (and other notable moments), in order."""

    __tablename__ = "conversation_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbBranch(Base):
    __tablename__ = "kb_branches"
    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_branch_parent_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("kb_branches.id"))


class KbEntry(Base):
    __tablename__ = "kb_entries"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("kb_branches.id"), index=True)
    question: Mapped[str] = mapped_column(String(500))
    similar: Mapped[list[str]] = mapped_column(default=list)
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)  # draft/published/archived
    valid_from: Mapped[datetime | None] = mapped_column()
    valid_to: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    # added in 0002 (KB editor)
    short_answer: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(64), default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class KbEntryVersion(Base):
    """Every save of an entry: who, when, the full snapshot and a readable diff against the previous one.

    Kept after the entry is deleted (no foreign key), so the history survives."""

    __tablename__ = "kb_entry_versions"
    __table_args__ = (UniqueConstraint("entry_id", "number", name="uq_kb_version_entry_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(36), index=True)
    number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))  # create/edit/publish/draft/archive/move/rollback/import/delete
    editor: Mapped[str] = mapped_column(String(64), default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    diff: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class KbFeedback(Base):
    """A citizen's thumbs up / down on one bot answer (one vote per message; the latest wins)."""

    __tablename__ = "kb_feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    visitor_id: Mapped[str] = mapped_column(String(128))
    vote: Mapped[str] = mapped_column(String(8))  # up / down
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class KbUnansweredResolved(Base):
    """A citizen question (normalised) an editor has dealt with: it leaves the 未解决问题 list."""

    __tablename__ = "kb_unanswered_resolved"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text_key: Mapped[str] = mapped_column(String(500), index=True)
    entry_id: Mapped[str | None] = mapped_column(String(36))
    resolved_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Who read or changed what: every staff view of a citizen record lands here."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # added in 0040 (security): who by name (a failed login names no user row) and from which IP.
    # Append-only: core/audit.py writes; only its retention sweeper deletes (a trigger on PostgreSQL)
    actor: Mapped[str] = mapped_column(String(64), default="", server_default="")
    ip: Mapped[str] = mapped_column(String(64), default="", server_default="")


class Ticket(Base):
    """A 工单: for now a citizen's 留言 left while waiting or outside working hours (added in 0010)."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open / closed
    group: Mapped[str | None] = mapped_column(String(64))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # added in 0030 (CRM): status open/processing/resolved/closed, the first-response SLA, who created it
    response_due_at: Mapped[datetime | None] = mapped_column(index=True)
    first_response_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(16), default="message", server_default="message")  # message / agent
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CsatRating(Base):
    """A citizen's 满意度评价 of one conversation (one per conversation; the latest wins) (added in 0010)."""

    __tablename__ = "csat_ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    agent_ids: Mapped[list[str]] = mapped_column(default=list)  # everyone who served it (transfers)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TicketEvent(Base):
    """One step in a 工单's life: a reply to the citizen, a status change, a new assignee (added in 0030)."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))  # created / reply / status / assign / note / merged
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedResponse(Base):
    """A 快捷回复 (常用语): shared by supervisors (scope "shared") or one agent's own (scope
    "user:<id>"); the shortcut is unique within its scope (added in 0020)."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("scope", "shortcut", name="uq_canned_scope_shortcut"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    shortcut: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# per-domain tables (registered on the same metadata)
from core.models import bot as _bot  # noqa: E402,F401  (the bot's tables: ClarifyPick)
from core.models import qa as _qa  # noqa: E402,F401
from core.models import voice as _voice  # noqa: E402,F401  (the call center tables)
from core.models.bot import ClarifyPick  # noqa: E402,F401

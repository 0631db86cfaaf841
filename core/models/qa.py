"""The QA center's tables (质检中心): one QA item per closed conversation (or call), versioned rule sets
and score sheets, inspection tasks, inspections (scores) and re-review appeals (复核)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class QaRuleSet(Base):
    """Every save of the automatic rules is a new version; the newest scores new items."""

    __tablename__ = "qa_rule_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaSheet(Base):
    """A score sheet (评分表) version: weighted items (automatic ones tied to rules, manual ones) and a pass mark."""

    __tablename__ = "qa_sheets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(64))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    pass_mark: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaItem(Base):
    """One closed conversation (or call) as inspected: its figures, its automatic hits and its score.

    The unique conversation id is what makes creation exactly-once: every scorer that finds a closed
    conversation without an item tries to insert, one wins. A call adds its recording and the
    recording's timed text (`segments`: [{start, end, speaker, text}])."""

    __tablename__ = "qa_items"
    __table_args__ = (
        Index("ix_qa_items_day_agent", "day", "agent_id"),
        Index("ix_qa_items_agent_day", "agent_id", "day"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    citizen_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    agent_ids: Mapped[list[str]] = mapped_column(default=list)
    group: Mapped[str | None] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime] = mapped_column(index=True)
    day: Mapped[str] = mapped_column(String(10))  # the close's day in the bureau's time zone, YYYY-MM-DD
    hour: Mapped[int] = mapped_column(Integer)  # the start's hour there (0-23)
    handed_off: Mapped[bool] = mapped_column(Boolean, default=False)
    handoff_reason: Mapped[str | None] = mapped_column(String(32))
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    first_response_seconds: Mapped[float | None] = mapped_column(Float)
    handle_seconds: Mapped[float | None] = mapped_column(Float)
    longest_gap_seconds: Mapped[float | None] = mapped_column(Float)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    disposition: Mapped[str | None] = mapped_column(String(32))
    csat: Mapped[int | None] = mapped_column(Integer)
    ticket_ids: Mapped[list[str]] = mapped_column(default=list)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    recording_path: Mapped[str | None] = mapped_column(String(500))
    recording_seconds: Mapped[float | None] = mapped_column(Float)
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    hits: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    complaint: Mapped[bool] = mapped_column(Boolean, default=False)
    ruleset_version: Mapped[int] = mapped_column(Integer)
    sheet_version: Mapped[int] = mapped_column(Integer)
    auto_score: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)  # the standing one: final > inspected > automatic
    passed: Mapped[bool] = mapped_column(Boolean)
    # scored / sampled / inspected / appealed / final
    status: Mapped[str] = mapped_column(String(16), default="scored", index=True)
    search_text: Mapped[str] = mapped_column(Text, default="")  # character bigrams and words, space-separated
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaTask(Base):
    """An inspection task (质检任务): one item for one inspector, by a due date."""

    __tablename__ = "qa_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("qa_items.id", ondelete="CASCADE"), unique=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # random / below_pass / complaint / low_csat / weekly_minimum
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open / done
    due_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column()


class QaInspection(Base):
    """A person's score of an item: an inspection, or a supervisor's re-review decision (kind "review")."""

    __tablename__ = "qa_inspections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("qa_items.id", ondelete="CASCADE"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16), default="inspection")
    sheet_version: Mapped[int] = mapped_column(Integer)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    comments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    total: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaAppeal(Base):
    """An agent's re-review request (复核申请) and the supervisor's decision."""

    __tablename__ = "qa_appeals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("qa_items.id", ondelete="CASCADE"), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open / upheld / changed
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    final_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()


def _indexes_on_shared_tables() -> list[Index]:
    """The scorer's sweep finds recently closed conversations by their close; the service report
    counts conversations by start and 转人工 events by time."""
    from core.models import Conversation, ConversationEvent

    return [
        Index("ix_qa_conversations_closed_at", Conversation.closed_at),
        Index("ix_qa_conversations_started_at", Conversation.started_at),
        Index("ix_qa_events_kind_created_at", ConversationEvent.kind, ConversationEvent.created_at),
    ]


SHARED_TABLE_INDEXES = _indexes_on_shared_tables()


class QaVolumeDay(Base):
    """Conversations started per local day, hour and channel, and 转人工 per day (channel "", hour -1):
    kept for days that are over (they no longer change), so the service report reads ~100 rows a day
    instead of every conversation; today is always counted live."""

    __tablename__ = "qa_volume_days"
    __table_args__ = (UniqueConstraint("day", "channel", "hour", name="uq_qa_volume_day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(32))
    hour: Mapped[int] = mapped_column(Integer)
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    handed: Mapped[int] = mapped_column(Integer, default=0)

"""Call-center records (voice_bridge): one row per call, and each agent's SIP extension."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class CallRecord(Base):
    """One call (通话记录): who called whom, when, the IVR path, the agents it reached, how it ended,
    and where its recording is (a stereo WAV: left the citizen, right the bot or agent)."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_started_at", "started_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))  # inbound / outbound
    caller: Mapped[str] = mapped_column(String(64), index=True)
    callee: Mapped[str] = mapped_column(String(64), index=True)
    sip_call_id: Mapped[str] = mapped_column(String(128), default="")
    conversation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    citizen_id: Mapped[int | None] = mapped_column(Integer, index=True)
    agent_ids: Mapped[list[str]] = mapped_column(default=list)  # in the order they took the call
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)  # the last one
    ivr_path: Mapped[list[str]] = mapped_column(default=list)  # e.g. ["menu", "key:1", "group:社保"]
    group: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="active", index=True)
    disposition: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()  # an agent answered
    ended_at: Mapped[datetime | None] = mapped_column()
    wait_seconds: Mapped[float | None] = mapped_column()
    talk_seconds: Mapped[float | None] = mapped_column()
    recording_path: Mapped[str | None] = mapped_column(String(400))
    recording_seconds: Mapped[float | None] = mapped_column()
    # the recording's text for QA: [{start_s, end_s, speaker, text}]
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    memo: Mapped[str] = mapped_column(Text, default="")


class AgentExtension(Base):
    """The SIP address of an agent's phone (their profile's 分机), rung when a call is theirs."""

    __tablename__ = "agent_extensions"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    sip_uri: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

"""The bot's own tables (migration 0070)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class ClarifyPick(Base):
    """A labelled pair for the KB editors: a citizen's question the bot was unsure of, the
    entries it offered ("您是想问："), and the one the citizen picked (None: 都不是)."""

    __tablename__ = "bot_clarify_picks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="")
    question: Mapped[str] = mapped_column(Text)
    offered: Mapped[list[str]] = mapped_column(default=list)
    picked_entry_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

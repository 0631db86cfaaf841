"""The one interface every channel sits behind.

A channel turns its platform's requests into `InboundMessage`s for the hub and sends the
hub's replies back in its platform's format. It knows nothing of bots, queues or agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    channel_user_id: str  # web visitor id, WeChat openid, Telegram chat id
    text: str
    channel_message_id: str | None = None  # for deduplicating the platform's retries
    kind: str = "text"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    conversation_id: str
    message_id: int
    sender: str  # bot / agent / system
    sender_name: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


def compact_text(message: OutboundMessage) -> str:
    """What a channel with a small screen or a voice sends: the KB entry's short answer when the
    editor wrote one (`meta.short_answer`), else the message text."""
    short = (message.meta or {}).get("short_answer")
    return short.strip() if isinstance(short, str) and short.strip() else message.text


class OutputChannel(Protocol):
    """What the hub calls to reach a citizen. Implementations must not raise on a lost citizen."""

    name: str

    async def send(self, channel_user_id: str, message: OutboundMessage) -> None: ...

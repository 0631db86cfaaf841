"""内部备注 (internal notes): a staff member's note on a conversation, for colleagues only.

A note is a transcript line (so QA reads it in order, marked `meta.internal`), published on
the bus as a `note` event, never as a `message`: no channel delivers it and the citizen's
history leaves it out (`MessageView.internal`). Whoever opens the conversation later (after
a transfer, a supervisor watching, QA) sees it in the transcript.
"""

from __future__ import annotations

from typing import Any

from core.events import NoteEvent
from handoff.conversations import ConversationStore, MessageView

MAX_NOTE = 1000


class NoteError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def add_note(
    conversations: ConversationStore, bus: Any, conversation: Any, author: Any, text: Any, agent_id: int | None
) -> MessageView:
    """Store and announce one note. `agent_id` is who serves the conversation now (gets it live).
    Raises NoteError("empty" | "too_long")."""
    if not isinstance(text, str) or not text.strip():
        raise NoteError("empty")
    if len(text.strip()) > MAX_NOTE:
        raise NoteError("too_long")
    message, _ = await conversations.record(
        conversation.id,
        conversation.channel,
        "system",
        text.strip(),
        sender_name=author.display_name,
        meta={"internal": True, "note": True, "author_id": author.id, "author_role": author.role},
    )
    await bus.publish(NoteEvent(conversation.id, agent_id, message.to_json()))
    return message

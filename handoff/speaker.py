"""How handoff talks back up to the message path, without importing it.

Handoff greets a citizen when an agent takes them, tells them their place in the queue, thanks
them for a rating …; the console passes an agent's reply and typing on. All of that is the
message path's work (record, publish, deliver through the citizen's channel: flow.dispatch),
handed in as a `Speaker`."""

from __future__ import annotations

from typing import Any, Protocol

from handoff.conversations import ConversationView, MessageView
from handoff.state import OwnerState


class Speaker(Protocol):
    async def say(
        self,
        conversation: ConversationView,
        sender: str,
        text: str,
        *,
        sender_name: str = "",
        meta: dict[str, Any] | None = None,
        state: OwnerState | None = None,
    ) -> MessageView:
        """Record a bot, agent or system line and deliver it to the citizen and the serving agent.
        `state`: the owner the caller has just read (saves reading it again)."""
        ...

    async def typing(self, conversation_id: str, sender: str, active: bool = True) -> bool:
        """Someone is writing (or stopped); returns whether it was passed on."""
        ...

"""What the call center needs from the rest of the hub, as small Protocols the app passes in
(hub/services.py implements them over the message path): voice_bridge never imports flow or hub."""

from __future__ import annotations

from typing import Any, Protocol


class MessagePath(Protocol):
    """The conversation a call is: the same dispatcher, bot, KB answers, queue and routing as a chat."""

    async def open_call(self, call_id: str, caller: str) -> tuple[str, int]:
        """Open the call's conversation (channel "voice"); returns (conversation id, citizen id),
        the citizen found by the caller's number (a new profile the first time)."""
        ...

    async def ask(self, call_id: str, text: str, meta: dict[str, Any]) -> None:
        """The caller's words as a citizen message; the answers come back through the voice channel."""
        ...

    async def note(self, call_id: str, text: str) -> None:
        """A system line in the transcript (a key pressed, the caller hung up)."""
        ...

    async def hand_off(self, call_id: str, group: str | None, reason: str) -> None:
        """转人工: into the skill group's queue (or the routed one when None)."""
        ...

    async def queue_position(self, call_id: str) -> int | None: ...

    async def abandon(self, call_id: str) -> None:
        """The caller hung up while queued: out of the queue, the conversation closed as abandoned."""
        ...

    async def finish(self, call_id: str) -> None:
        """The call ended with the bot only (no person): close the conversation."""
        ...

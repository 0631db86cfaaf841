"""What a platform channel (WeChat, Telegram) records on its own: system notes the agent sees (a
subscription, a delivery error) and what the platform tells about a citizen (name, unionid)."""

from __future__ import annotations

from typing import Any

from crm import CitizenDirectory
from flow.dispatch import Dispatcher


class ChannelRecords:
    """One for every channel: notes go through the Dispatcher (recorded, then published like its
    own messages, so the serving agent's console shows them); profiles through the CRM."""

    def __init__(self, dispatcher: Dispatcher, citizens: CitizenDirectory) -> None:
        self._dispatcher = dispatcher
        self._citizens = citizens

    async def note(
        self, conversation_id: str, text: str, meta: dict[str, Any], *, channel_message_id: str | None = None
    ) -> bool:
        """A system line on a conversation, never sent to the citizen; False when it was already
        recorded (the same `channel_message_id`) or the conversation is unknown."""
        conversation = await self._dispatcher.conversations.get(conversation_id)
        if conversation is None:
            return False
        _message, is_new = await self._dispatcher.note(conversation, text, meta, channel_message_id=channel_message_id)
        return is_new

    async def set_name(self, citizen_id: int, name: str) -> None:
        """The name the platform shows, unless staff already entered one (never overwritten)."""
        citizen = await self._citizens.get(citizen_id)
        if citizen is not None and not citizen.name:
            await self._citizens.update(citizen_id, name=name)

    async def set_profile(self, citizen_id: int, *, name: str | None, unionid: str | None) -> None:
        if name:
            await self.set_name(citizen_id, name)
        if unionid:
            await self._citizens.link(citizen_id, "wechat_unionid", unionid[:128])

"""Why a citizen's message hands off before the bot sees it: a keyword, anger, a flagged citizen."""

from __future__ import annotations

from typing import Any

from handoff.context import HandoffContext
from handoff.state import OwnerState


class Triggers:
    def __init__(self, ctx: HandoffContext) -> None:
        self.ctx = ctx

    async def trigger(self, conversation: Any, text: str, state: OwnerState | None = None) -> str | None:
        """The reason to hand off now (`keyword`, `anger`, `flagged_citizen`), or None.

        `state`: the live state the caller has just read (once the flagged-citizen check is made,
        it saves a round trip per message)."""
        config = self.ctx.config
        if config.keywords.find(text):
            return "keyword"
        if config.anger_words.find(text):
            return "anger"
        if state is not None and state.flag_checked:
            return None
        # once per conversation: a citizen marked 重点关注 in the CRM, or carrying a flagged tag
        first = await self.ctx.redis.hsetnx(self.ctx.keys.conversation(conversation.id), "flag_checked", 1)
        if first:
            citizen = await self.ctx.citizens.get(conversation.citizen_id)
            if citizen and (getattr(citizen, "flagged", False) or config.flagged_tags.intersection(citizen.tags or [])):
                return "flagged_citizen"
        return None

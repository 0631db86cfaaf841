"""What a serving agent does with a conversation: return it to the bot, close it (with a
disposition, a summary and the CSAT question), transfer it to a colleague or a group's queue
(with a memo the receiver's screen-pop shows)."""

from __future__ import annotations

from typing import Any

from handoff.assignment import Assignment
from handoff.context import HandoffContext
from handoff.csat import Csat
from handoff.errors import HandoffError
from handoff.presence import Presence
from handoff.state import Owner

DISPOSITIONS = ("resolved", "unresolved", "ticket_created", "citizen_left", "transferred_out", "spam", "other")
MAX_MEMO = 500
MAX_SUMMARY = 1000



def check_wrap_up(disposition: str, summary: str) -> tuple[str, str]:
    """A disposition from DISPOSITIONS and a summary of at most MAX_SUMMARY characters."""
    disposition = disposition or "resolved"
    if disposition not in DISPOSITIONS:
        raise HandoffError("bad_disposition")
    summary = (summary or "").strip()
    if len(summary) > MAX_SUMMARY:
        raise HandoffError("too_long")
    return disposition, summary

class AgentActions:
    def __init__(self, ctx: HandoffContext, presence: Presence, assignment: Assignment, csat: Csat) -> None:
        self.ctx = ctx
        self.presence = presence
        self.assignment = assignment
        self.csat = csat

    async def own(self, conversation_id: str, agent_id: int) -> None:
        """Refuse (`not_yours`) unless this agent serves the conversation now."""
        state = await self.ctx.ownership.state(conversation_id)
        if state.owner != Owner.AGENT or state.agent_id != agent_id:
            raise HandoffError("not_yours")

    async def return_to_bot(
        self, conversation: Any, agent_id: int, disposition: str = "resolved", summary: str = ""
    ) -> None:
        """The agent hands the citizen back to the bot, recording how the human part ended (as 结束会话 does)."""
        disposition, summary = check_wrap_up(disposition, summary)
        ctx = self.ctx
        await self.own(conversation.id, agent_id)
        await self.assignment.handled(conversation.id)
        result = await ctx.ownership.apply(
            conversation.id,
            "return_to_bot",
            actor=f"agent:{agent_id}",
            expected_agent=agent_id,
            data={"previous_agent_id": agent_id, "disposition": disposition, "summary": summary},
        )
        if not result.ok:
            raise HandoffError("not_yours")
        await ctx.speaker.say(conversation, "system", ctx.config.texts["returned_reply"])
        await self.assignment.drain_for_agent(agent_id)

    async def close(self, conversation: Any, agent_id: int, disposition: str = "resolved", summary: str = "") -> None:
        disposition, summary = check_wrap_up(disposition, summary)
        ctx = self.ctx
        await self.own(conversation.id, agent_id)
        await self.assignment.handled(conversation.id)
        served = sorted(int(a) for a in await ctx.redis.smembers(ctx.keys.served(conversation.id)))
        result = await ctx.ownership.apply(
            conversation.id,
            "close",
            actor=f"agent:{agent_id}",
            expected_agent=agent_id,
            data={"previous_agent_id": agent_id, "disposition": disposition, "summary": summary, "served_by": served},
        )
        if not result.ok:
            raise HandoffError("not_yours")
        await ctx.speaker.say(conversation, "system", ctx.config.texts["closed_reply"])
        await self.csat.offer(conversation, agent_id)
        await self.assignment.drain_for_agent(agent_id)

    async def transfer(
        self, conversation: Any, agent_id: int, *, to_agent: Any = None, to_group: Any = None, memo: Any = ""
    ) -> dict[str, Any]:
        """Hand a conversation to a colleague (directly) or to a group's queue (at its front), with a memo."""
        ctx = self.ctx
        memo = memo.strip() if isinstance(memo, str) else ""
        if len(memo) > MAX_MEMO:
            raise HandoffError("too_long")
        await self.own(conversation.id, agent_id)
        outcome: dict[str, Any]
        if to_agent not in (None, ""):
            target = await self._transfer_target(to_agent, agent_id)
            name, outcome = "transfer", {"to_agent_id": target}
            options: dict[str, Any] = {"agent_id": target, "capacity": ctx.config.capacity}
        elif isinstance(to_group, str) and to_group in ctx.config.groups:
            name, outcome, options = "transfer_to_group", {"to_group": to_group}, {"group": to_group}
        else:
            raise HandoffError("unknown_group")
        # the memo is on the conversation before the receiver's screen-pop reads it
        from_name = await self.presence.display_name(agent_id) or ""
        await ctx.redis.hset(ctx.keys.conversation(conversation.id), mapping={"memo": memo, "memo_from": from_name})
        await self.assignment.handled(conversation.id)
        result = await ctx.ownership.apply(
            conversation.id,
            name,
            actor=f"agent:{agent_id}",
            expected_agent=agent_id,
            data={"memo": memo, "from_agent_id": agent_id, **outcome},
            **options,
        )
        if not result.ok:
            raise HandoffError("at_capacity" if result.reason == "at_capacity" else "not_yours")
        if name == "transfer":
            await self.after_transfer_to_agent(conversation, outcome["to_agent_id"])
        else:
            await ctx.speaker.say(
                conversation, "system", ctx.config.texts["transferred_reply"].format(target=f"{to_group}技能组")
            )
            await self.assignment.drain(str(to_group))
        await self.assignment.drain_for_agent(agent_id)
        return outcome

    async def _transfer_target(self, to_agent: Any, agent_id: int) -> int:
        """The colleague a conversation is transferred to (id or username): known, not oneself, reachable."""
        presence = self.presence
        target = (
            int(to_agent)
            if isinstance(to_agent, int) or str(to_agent).isdigit()
            else await presence.user_by_name(str(to_agent))
        )
        if target is None or await presence.user(target) is None:
            raise HandoffError("unknown_agent")
        if target == agent_id:
            raise HandoffError("bad_field")
        if (await presence.of(target))["status"] not in ("online", "busy"):
            raise HandoffError("agent_unavailable")
        return target

    async def after_transfer_to_agent(self, conversation: Any, target: int) -> None:
        await self.assignment.served_by(conversation.id, target)
        name = await self.presence.display_name(target) or ""
        await self.ctx.speaker.say(
            conversation, "system", self.ctx.config.texts["transferred_reply"].format(target=f"人工客服 {name}")
        )

    async def group_and_memo(self, conversation_id: str) -> tuple[str | None, dict[str, str] | None]:
        """A conversation's skill group and its transfer memo (the screen-pop's header), in one read."""
        key = self.ctx.keys.conversation(conversation_id)
        group, text, author = await self.ctx.redis.hmget(key, "group", "memo", "memo_from")
        return group or None, {"text": text, "from": author or ""} if text else None

"""Citizens waiting for a person: the handoff itself, their place and estimated wait, the
console's queue list, and 留言 (a ticket) for those who would rather not wait."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.models import Citizen, Conversation, ConversationEvent, Message
from handoff.assignment import Assignment
from handoff.context import HandoffContext
from handoff.errors import HandoffError
from handoff.presence import Presence
from handoff.state import Owner

MAX_TICKET = 1000

# For each conversation (KEYS: their hashes; ARGV: a queue key around its group (head, tail), a
# stats key around its group (head, tail), then the conversations' ids in the same order):
# owner, agent id, group, rank in the group's queue ('' when not there), the group's average handle time
STATES_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local fields = redis.call('HMGET', key, 'owner', 'agent_id', 'group')
  local owner = fields[1] or 'bot'
  local group = fields[3] or ''
  local rank = ''
  local handle = ''
  if owner == 'queued' and group ~= '' then
    rank = redis.call('ZRANK', ARGV[1] .. group .. ARGV[2], ARGV[i + 4]) or ''
    handle = redis.call('HGET', ARGV[3] .. group .. ARGV[4], 'handle_avg') or ''
  end
  out[i] = {owner, fields[2] or '', group, rank, handle}
end
return out
"""


class WaitingCitizens:
    def __init__(self, ctx: HandoffContext, presence: Presence, assignment: Assignment) -> None:
        self.ctx = ctx
        self.presence = presence
        self.assignment = assignment
        self._states = ctx.redis.register_script(STATES_LUA)

    async def request_human(
        self,
        conversation: Any,
        *,
        reason: str,
        announce: bool,
        intent: str | None = None,
        group: str | None = None,
    ) -> str:
        """Put the conversation in its skill group's queue; returns the text that tells the citizen.

        Outside the group's working hours nothing is queued: the citizen is told when people
        are back and offered to leave a message (that text is said here and "" returned)."""
        ctx, assignment = self.ctx, self.assignment
        group = await assignment.route(conversation.id, intent=intent, explicit=group)
        state = await ctx.ownership.state(conversation.id)
        if state.owner == Owner.BOT:
            closed = assignment.closed_text(group)
            if closed is not None:
                meta = {"offer_leave_message": True, "off_hours": True, "group": group}
                await ctx.speaker.say(conversation, "system", closed, meta=meta)
                return ""
            await ctx.redis.hset(
                ctx.keys.conversation(conversation.id),
                mapping={
                    "citizen_id": conversation.citizen_id,
                    "handoff_reason": reason,  # shown in the console's queue list
                    "handoff_intent": intent or "",
                },
            )
        # the drain (and so the agent's screen-pop) starts at once: the transition's record is
        # written beside it, and the queue position is told only if the citizen still waits
        result = await ctx.ownership.apply(
            conversation.id, "request_human", actor="citizen" if reason == "button" else "bot",
            group=group, data={"reason": reason, **({"intent": intent} if intent else {})}, record_later=True,
        )
        try:
            if result.ok:
                await assignment.drain(group)
                await assignment.drained(group)  # a drain already running here may be assigning it
            state = await ctx.ownership.state(conversation.id)
            if state.owner == Owner.AGENT:
                return ""  # an agent has it (the assignment greets the citizen)
            position = await ctx.ownership.queue_position(conversation.id, state.group or group) or 1
            text = str(ctx.config.texts["queued_reply"]).format(position=position)
            if announce:
                await ctx.speaker.say(conversation, "system", text, state=state)
            return text
        finally:
            if result.recording is not None:
                await result.recording

    # ------------------------------------------------------------------ place and wait
    async def eta_seconds(self, group: str, position: int) -> int:
        """The estimated wait: position × the group's recent average handle time ÷ its online slots."""
        handle = await self.ctx.redis.hget(self.ctx.keys.group_stats(group), "handle_avg")
        return await self._eta(group, position, handle)

    async def _eta(self, group: str, position: int, handle_avg: str | None) -> int:
        config = self.ctx.config
        handle_seconds = float(handle_avg or config.default_handle_seconds)
        slots = max(1, await self.presence.online_members(group) * config.capacity)
        return int(round(position * handle_seconds / slots / 5.0) * 5) or 5

    async def state_frame(self, conversation_id: str) -> dict[str, Any]:
        """The citizen's `state` frame: owner, queue position, estimated wait, group, agent's name."""
        return (await self.state_frames([conversation_id]))[conversation_id]

    async def state_frames(self, conversation_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The `state` frames of many conversations in one Redis round trip (plus a cached online
        count per group): the web channel refreshes every waiting citizen's position at once."""
        ids = list(dict.fromkeys(conversation_ids))
        if not ids:
            return {}
        keys = self.ctx.keys
        rows = await self._states(
            keys=[keys.conversation(conversation_id) for conversation_id in ids],
            args=[*keys.around(keys.queue), *keys.around(keys.group_stats), *ids],
        )
        frames = {}
        for conversation_id, (owner, agent, group, rank, handle) in zip(ids, rows, strict=True):
            owner = owner or "bot"
            position = eta = None
            if owner == Owner.QUEUED and group and rank is not None and rank != "":
                position = int(rank) + 1
                eta = await self._eta(group, position, handle)
            frames[conversation_id] = {
                "type": "state",
                "owner": owner,
                "queue_position": position,
                "eta_seconds": eta,
                "group": group or None if owner != Owner.BOT else None,
                "agent_name": await self.presence.display_name(int(agent)) if owner == Owner.AGENT and agent else None,
            }
        return frames

    async def queue_items(self) -> list[dict[str, Any]]:
        """The console's queue list: every waiting conversation, oldest first, with its channel,
        the citizen's name and their last line (one query for all of them)."""
        waiting = await self.ctx.ownership.waiting()
        if not waiting:
            return []
        last_line = (
            select(Message.text)
            .where(Message.conversation_id == Conversation.id, Message.sender == "citizen")
            .order_by(Message.id.desc())
            .limit(1)
            .correlate(Conversation)
            .scalar_subquery()
        )
        async with self.ctx.sessions() as session:
            rows = await session.execute(
                select(Conversation.id, Conversation.channel, Citizen.name, last_line)
                .outerjoin(Citizen, Citizen.id == Conversation.citizen_id)
                .where(Conversation.id.in_([conversation_id for conversation_id, _group, _since in waiting]))
            )
            found = {conv_id: (channel, name, last) for conv_id, channel, name, last in rows}
        async with self.ctx.redis.pipeline(transaction=False) as pipe:
            for conversation_id, _group, _since in waiting:
                pipe.hmget(self.ctx.keys.conversation(conversation_id), "handoff_reason", "handoff_intent", "queued_at")
            why = dict(zip([conversation_id for conversation_id, _g, _s in waiting], await pipe.execute(), strict=True))
        now = time.time()
        items = []
        for conversation_id, group, since in waiting:
            if conversation_id not in found:
                continue
            channel, name, last = found[conversation_id]
            reason, intent, queued_at = why.get(conversation_id) or (None, None, None)
            if queued_at:  # a requeued conversation's queue score is shifted to the front (FRONT_OFFSET)
                since = float(queued_at)
            items.append(
                {
                    "conversation_id": conversation_id,
                    "channel": channel,
                    "group": group,
                    "citizen_name": name or "访客",
                    "waiting_since": since,
                    "waiting_seconds": max(0, round(now - since)),
                    "last_text": last or "",
                    "reason": reason or None,  # why the citizen was handed off (request_human)
                    "intent": intent or None,
                }
            )
        return items

    # ------------------------------------------------------------------ 留言
    async def offer_messages(self) -> None:
        """Offer 留言 to citizens who have waited longer than `offer_message_after_seconds` (once each)."""
        ctx = self.ctx
        limit = time.time() - ctx.config.offer_message_after
        for group in await ctx.redis.smembers(ctx.keys.queues()):
            for conversation_id in await ctx.redis.zrange(ctx.keys.queue(group), 0, -1):
                key = ctx.keys.conversation(conversation_id)
                queued_at = await ctx.redis.hget(key, "queued_at")
                if not queued_at or float(queued_at) > limit:
                    continue
                if not await ctx.redis.hsetnx(key, "offered", 1):
                    continue
                conversation = await ctx.conversations.get(conversation_id)
                if conversation is not None:
                    await ctx.speaker.say(
                        conversation,
                        "system",
                        ctx.config.texts["offer_message_reply"],
                        meta={"offer_leave_message": True},
                    )

    async def leave_message(self, conversation: Any, text: str) -> dict[str, Any]:
        """A citizen's 留言 becomes a ticket (工单); a queued citizen leaves the queue for the bot."""
        if not isinstance(text, str) or not text.strip():
            raise HandoffError("empty")
        text = text.strip()
        if len(text) > MAX_TICKET:
            raise HandoffError("too_long")
        ctx = self.ctx
        state = await ctx.ownership.state(conversation.id)
        group = state.group or await self.assignment.route(conversation.id)
        now = datetime.now(UTC)
        async with ctx.sessions() as session, session.begin():
            ticket_id = await ctx.add_ticket(
                session,
                citizen_id=conversation.citizen_id,
                conversation_id=conversation.id,
                text=text,
                group=group,
                due_hours=ctx.config.ticket_due_hours,
                now=now,
            )
            session.add(
                ConversationEvent(
                    conversation_id=conversation.id,
                    kind="ticket_created",
                    from_state=state.owner.value,
                    to_state=state.owner.value,
                    actor="citizen",
                    data={"ticket_id": ticket_id, "group": group},
                )
            )
        if state.owner == Owner.QUEUED:
            await ctx.ownership.apply(
                conversation.id,
                "cancel_queue",
                actor="citizen",
                data={"reason": "left_message", "ticket_id": ticket_id},
            )
        await ctx.speaker.say(
            conversation,
            "system",
            ctx.config.texts["ticket_reply"].format(ticket=ticket_id),
            meta={"ticket_id": ticket_id},
        )
        return {
            "ticket_id": ticket_id,
            "group": group,
            "due_at": (now + timedelta(hours=ctx.config.ticket_due_hours)).isoformat(),
        }

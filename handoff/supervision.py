"""What a supervisor (班长) does: the board (queues, waits, agents' states and loads), watching a
conversation (from any worker), whispering to the serving agent, taking a conversation over.

Redis keys (core.redis_client.Keys): `watching(supervisor)` (the conversations they watch)."""

from __future__ import annotations

import time
from typing import Any

from core.events import WatchEvent, WhisperEvent
from handoff.assignment import Assignment
from handoff.board_details import describe
from handoff.context import HandoffContext
from handoff.errors import HandoffError
from handoff.presence import Presence
from handoff.state import Owner

MAX_WHISPER = 500
WATCH_TTL = 24 * 3600  # a supervisor's watch list outlives a shift's reconnects, not the shift


class Supervision:
    def __init__(self, ctx: HandoffContext, presence: Presence, assignment: Assignment) -> None:
        self.ctx = ctx
        self.presence = presence
        self.assignment = assignment

    async def board(self) -> dict[str, Any]:
        """What a supervisor's board shows: every queue with its waits and its waiting conversations
        (in queue order, to watch or take over), every agent's state and load. Redis only, a few
        round trips."""
        redis, keys = self.ctx.redis, self.ctx.keys
        now = time.time()
        groups = sorted(set(self.ctx.config.groups) | set(await redis.smembers(keys.queues())))
        pipe = redis.pipeline(transaction=False)
        for group in groups:
            pipe.zrange(keys.queue(group), 0, -1)
            pipe.hgetall(keys.group_stats(group))
        raw = await pipe.execute()
        queued = [(group, conversation_id) for index, group in enumerate(groups) for conversation_id in raw[2 * index]]
        pipe = redis.pipeline(transaction=False)
        for _group, conversation_id in queued:
            pipe.hget(keys.conversation(conversation_id), "queued_at")
        since = await pipe.execute() if queued else []
        waiting = [
            {
                "conversation_id": conversation_id,
                "group": group,
                "waiting_seconds": round(max(0.0, now - float(at)), 1) if at else 0.0,
            }
            for (group, conversation_id), at in zip(queued, since, strict=True)
        ]
        queues = []
        for index, group in enumerate(groups):
            waits = [w["waiting_seconds"] for w in waiting if w["group"] == group]
            stats = raw[2 * index + 1]
            queues.append(
                {
                    "group": group,
                    "waiting": len(waits),
                    "longest_wait_seconds": max(waits) if waits else 0,
                    "avg_wait_seconds": float(stats["wait_avg"]) if "wait_avg" in stats else None,
                    "avg_handle_seconds": float(stats["handle_avg"]) if "handle_avg" in stats else None,
                }
            )
        agents = await self.presence.agents()
        pipe = redis.pipeline(transaction=False)
        for agent in agents:
            pipe.smembers(keys.agent_conversations(agent["agent_id"]))
        for agent, conversations in zip(agents, await pipe.execute() if agents else [], strict=True):
            agent["conversations"] = sorted(conversations)
        # citizen, channel and last line of every listed conversation (handoff.board_details: one query)
        listed = [w["conversation_id"] for w in waiting] + [c for a in agents for c in a["conversations"]]
        details = await describe(self.ctx.sessions, listed)
        return {
            "type": "board", "at": now, "queues": queues, "waiting": waiting, "agents": agents, "details": details,
        }

    async def watch(self, supervisor_id: int, conversation_id: str, on: bool = True) -> None:
        """Start (or stop) a supervisor's watch of a conversation. Kept in Redis, so that the
        supervisor's page reconnecting to another worker keeps watching; every worker holding
        one of their sockets learns of it from the `watch` event."""
        redis = self.ctx.redis
        key = self.ctx.keys.watching(supervisor_id)
        if on:
            pipe = redis.pipeline(transaction=False)
            pipe.sadd(key, conversation_id)
            pipe.expire(key, WATCH_TTL)
            await pipe.execute()
        else:
            await redis.srem(key, conversation_id)
        await self.ctx.bus.publish(WatchEvent(supervisor_id, conversation_id, on))

    async def watched(self, supervisor_id: int) -> list[str]:
        """What a supervisor watches (conversations since closed are dropped from the list)."""
        redis = self.ctx.redis
        key = self.ctx.keys.watching(supervisor_id)
        watched = sorted(await redis.smembers(key))
        if not watched:
            return []
        pipe = redis.pipeline(transaction=False)
        for conversation_id in watched:
            pipe.hget(self.ctx.keys.conversation(conversation_id), "owner")
        owners = await pipe.execute()
        closed = [c for c, owner in zip(watched, owners, strict=True) if owner is None]
        if closed:
            await redis.srem(key, *closed)
        return [c for c in watched if c not in closed]

    async def whisper(self, conversation: Any, supervisor: Any, text: Any) -> Any:
        """A supervisor's note to the serving agent: kept in the transcript with meta whisper=true,
        published as a `whisper` event (never `message`), so no channel ever delivers it."""
        if not isinstance(text, str) or not text.strip():
            raise HandoffError("empty")
        if len(text) > MAX_WHISPER:
            raise HandoffError("too_long")
        state = await self.ctx.ownership.state(conversation.id)
        if state.owner != Owner.AGENT:
            raise HandoffError("taken")
        message, _ = await self.ctx.conversations.record(
            conversation.id,
            conversation.channel,
            "system",
            text.strip(),
            sender_name=supervisor.display_name,
            meta={"whisper": True, "from_user_id": supervisor.id},
        )
        await self.ctx.bus.publish(WhisperEvent(conversation.id, state.agent_id, message.to_json()))
        return message

    async def take_over(self, conversation: Any, supervisor: Any) -> dict[str, Any]:
        """A supervisor takes a waiting or served conversation onto their own console.

        A deliberate act (an escalation, a struggling colleague, a citizen waiting too long): it is
        NOT held back by the supervisor's capacity or presence. The board shows the supervisor's
        load against the capacity and the page asks for a confirmation, so the choice is seen.
        Returns the supervisor's load after it and whether that is beyond the capacity."""
        ownership, capacity = self.ctx.ownership, self.ctx.config.capacity
        state = await ownership.state(conversation.id)
        if state.owner == Owner.AGENT and state.agent_id == supervisor.id:
            raise HandoffError("bad_field")
        if state.owner not in (Owner.AGENT, Owner.QUEUED):
            raise HandoffError("taken")
        served = state.owner == Owner.AGENT
        result = await ownership.apply(
            conversation.id,
            "transfer" if served else "assign",
            actor=f"supervisor:{supervisor.id}",
            agent_id=supervisor.id,
            # exactly the conversation the board showed: not one that moved meanwhile
            expected_agent=state.agent_id if served else None,
            data={"take_over": True},
        )
        if not result.ok:
            raise HandoffError("taken")
        self.presence.remember(supervisor)
        await self.assignment.after_assign(conversation.id, supervisor.id, waited=not served)
        if state.agent_id is not None:
            await self.assignment.drain_for_agent(state.agent_id)
        load = len(await ownership.agent_conversations(supervisor.id))
        return {"load": load, "capacity": capacity, "over_capacity": load > capacity}

"""The handoff sweeper every worker runs: heartbeats of the agents whose sockets it holds; then,
one worker per interval (a Redis lock, `Keys.handoff_sweeper`), silent agents go offline and
their conversations back to the FRONT of their queues, long waiters are offered 留言, and what
can be assigned is."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from core.events import PresenceEvent
from handoff.assignment import Assignment
from handoff.context import HandoffContext
from handoff.presence import Presence
from handoff.waiting import WaitingCitizens

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self, ctx: HandoffContext, presence: Presence, assignment: Assignment, waiting: WaitingCitizens
    ) -> None:
        self.ctx = ctx
        self.presence = presence
        self.assignment = assignment
        self.waiting = waiting
        self._worker = uuid.uuid4().hex

    async def run(self, tick: Callable[[], Awaitable[None]]) -> None:
        """Each worker: `tick` every sweep interval (`Handoff.tick`: `my_turn`, then `sweep`)."""
        while True:
            try:
                await tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handoff sweeper failed")
            await asyncio.sleep(self.ctx.config.sweep_interval)

    async def my_turn(self) -> bool:
        """Refresh the heartbeats of this worker's agents; True when this worker sweeps this interval."""
        ctx = self.ctx
        await self.presence.heartbeats(list(ctx.local_agents()))
        lock_ms = max(100, int(ctx.config.sweep_interval * 900))
        return bool(await ctx.redis.set(ctx.keys.handoff_sweeper(), self._worker, nx=True, px=lock_ms))

    async def sweep(self) -> None:
        cutoff = time.time() - self.ctx.config.heartbeat_timeout
        for agent_id, changed in await self.presence.mark_silent_offline(cutoff):
            if changed == 1:
                await self.ctx.bus.publish(PresenceEvent(agent_id, "offline"))
            if changed in (1, 2):
                await self.requeue_agent(agent_id)
        await self.waiting.offer_messages()
        await self.assignment.drain_all()

    async def requeue_agent(self, agent_id: int) -> int:
        """An agent went offline: their conversations go back to the FRONT of their queues."""
        ctx = self.ctx
        moved = 0
        for conversation_id in sorted(await ctx.ownership.agent_conversations(agent_id)):
            result = await ctx.ownership.apply(
                conversation_id,
                "requeue",
                actor="system:presence",
                expected_agent=agent_id,
                data={"reason": "agent_offline", "previous_agent_id": agent_id},
            )
            if not result.ok:
                continue
            moved += 1
            conversation = await ctx.conversations.get(conversation_id)
            if conversation is not None:
                await ctx.speaker.say(conversation, "system", ctx.config.texts["agent_offline_reply"])
            if result.state and result.state.group:
                await self.assignment.drain(result.state.group)
        return moved

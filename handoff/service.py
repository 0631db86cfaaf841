"""`Handoff`: the one object the rest of the hub holds for everything between the bot and a person.

It is a thin front over the parts that do the work, one job each, sharing one `HandoffContext`:

  presence      handoff.presence      agents' presence, load and names
  routing       handoff.assignment    which group, which agent; the drains; the moving averages
  waiting       handoff.waiting       the handoff itself, queue positions and waits, the queue list, 留言
  triggers      handoff.triggers      keyword, anger and flagged-citizen handoffs
  agent actions handoff.agent_actions return to the bot, close, transfer
  CSAT          handoff.csat          the question and the rating
  supervisors   handoff.supervision   the board, watching, whispers, taking over
  sweeper       handoff.sweeper       heartbeats, silent agents offline, 留言 offers, auto-assignment

Every ownership change still goes through `Ownership.apply` (one Lua compare-and-set each).
Handoff talks back to the citizen through a `Speaker` (the message path's `say`) and never
imports the message path; the CRM's 留言 ticket is passed in as a callable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.bus import EventBus
from core.redis_client import Keys
from handoff.agent_actions import DISPOSITIONS, AgentActions
from handoff.assignment import Assignment
from handoff.context import Citizens, HandoffContext, MessageTicket
from handoff.conversations import ConversationStore
from handoff.csat import Csat
from handoff.errors import HandoffError
from handoff.presence import Presence
from handoff.routing import HandoffConfig
from handoff.speaker import Speaker
from handoff.state import Ownership
from handoff.supervision import Supervision
from handoff.sweeper import Sweeper
from handoff.triggers import Triggers
from handoff.waiting import WaitingCitizens

__all__ = ["DISPOSITIONS", "Handoff", "HandoffError"]


class Handoff:
    def __init__(
        self,
        speaker: Speaker,
        bus: EventBus,
        settings: Any,
        ownership: Ownership,
        conversations: ConversationStore,
        citizens: Citizens,
        add_ticket: MessageTicket,
    ) -> None:
        ctx = self.ctx = HandoffContext(
            HandoffConfig.from_settings(settings), ownership, conversations, citizens, speaker, bus, add_ticket
        )
        roster = self.roster = Presence(ctx)
        assignment = self.assignment = Assignment(ctx, roster)
        roster.on_online = assignment.drain_for_agent
        waiting = self.waiting = WaitingCitizens(ctx, roster, assignment)
        feedback = self.feedback = Csat(ctx)
        actions = self.actions = AgentActions(ctx, roster, assignment, feedback)
        supervision = self.supervision = Supervision(ctx, roster, assignment)
        sweeper = self.sweeper = Sweeper(ctx, roster, assignment, waiting)
        triggers = self.triggers = Triggers(ctx)

        # the public interface: each name is its part's method (callers and tests use these)
        self.presence_key = roster.key
        self.user = roster.user
        self.user_by_name = roster.user_by_name
        self.display_name = roster.display_name
        self.connect = roster.connect
        self.heartbeats = roster.heartbeats
        self.set_presence = roster.set
        self.presence = roster.of
        self.agents = roster.agents

        self.candidates = assignment.candidates
        self.members_present = assignment.members_present
        self.route = assignment.route
        self.remember_branch = assignment.remember_branch
        self.closed_text = assignment.closed_text
        self.citizen_merged = assignment.citizen_merged
        self.drain = assignment.drain
        self.drained = assignment.drained
        self.drain_for_agent = assignment.drain_for_agent
        self.drain_all = assignment.drain_all
        self.accept = assignment.accept
        self.after_assign = assignment.after_assign

        self.request_human = waiting.request_human
        self.eta_seconds = waiting.eta_seconds
        self.state_frame = waiting.state_frame
        self.state_frames = waiting.state_frames
        self.queue_items = waiting.queue_items
        self.offer_messages = waiting.offer_messages
        self.leave_message = waiting.leave_message

        self.trigger = triggers.trigger

        self.return_to_bot = actions.return_to_bot
        self.close = actions.close
        self.transfer = actions.transfer
        self.after_transfer_to_agent = actions.after_transfer_to_agent
        self.group_and_memo = actions.group_and_memo

        self.rate = feedback.rate

        self.board = supervision.board
        self.watch = supervision.watch
        self.watched = supervision.watched
        self.whisper = supervision.whisper
        self.take_over = supervision.take_over

        self.sweep = sweeper.sweep
        self.requeue_agent = sweeper.requeue_agent

    async def run(self) -> None:
        """Each worker: refresh the heartbeat of the agents whose sockets it holds, then (one worker
        per interval, under a Redis lock) mark silent agents offline and requeue their
        conversations, offer 留言 to long waiters, and assign what can be assigned."""
        await self.sweeper.run(self.tick)

    async def tick(self) -> None:
        if await self.sweeper.my_turn():
            await self.sweep()

    async def heartbeat(self, agent_id: int) -> None:
        await self.roster.heartbeats([agent_id])

    async def memo(self, conversation_id: str) -> dict[str, str] | None:
        return (await self.actions.group_and_memo(conversation_id))[1]

    # ------------------------------------------------------------------ shared settings and stores
    @property
    def config(self) -> HandoffConfig:
        return self.ctx.config

    @property
    def ownership(self) -> Ownership:
        return self.ctx.ownership

    @property
    def conversations(self) -> ConversationStore:
        return self.ctx.conversations

    @property
    def citizens(self) -> Citizens:
        return self.ctx.citizens

    @property
    def speaker(self) -> Speaker:
        return self.ctx.speaker

    @property
    def bus(self) -> EventBus:
        return self.ctx.bus

    @property
    def redis(self) -> aioredis.Redis:
        return self.ctx.redis

    @property
    def keys(self) -> Keys:
        return self.ctx.keys

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.ctx.sessions

    @property
    def clock(self) -> Callable[[], datetime]:
        """What time it is (working hours): a test sets another clock here."""
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.ctx.clock = clock

    @property
    def local_agents(self) -> Callable[[], Iterable[int]]:
        """The agents whose console sockets this worker holds (the console sets it)."""
        return self.ctx.local_agents

    @local_agents.setter
    def local_agents(self, agents: Callable[[], Iterable[int]]) -> None:
        self.ctx.local_agents = agents

"""What every part of the handoff service shares: its settings, the state machine, the stores,
the way back to the citizen (`Speaker`) and the bus; one object, so that a test's clock or the
console's list of local sockets set on the `Handoff` reaches every part."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.bus import EventBus
from core.redis_client import Keys
from handoff.conversations import ConversationStore
from handoff.routing import HandoffConfig
from handoff.speaker import Speaker
from handoff.state import Ownership


class Citizens(Protocol):
    """The CRM's directory, as handoff reads it (crm.CitizenDirectory)."""

    async def get(self, citizen_id: int) -> Any: ...


# writes a 留言 ticket in the caller's transaction and returns its id (crm.add_message_ticket)
MessageTicket = Callable[..., Awaitable[int]]


def _now() -> datetime:
    return datetime.now(UTC)


def _nobody() -> Iterable[int]:
    return ()


@dataclass
class HandoffContext:
    config: HandoffConfig
    ownership: Ownership
    conversations: ConversationStore
    citizens: Citizens
    speaker: Speaker
    bus: EventBus
    add_ticket: MessageTicket
    clock: Callable[[], datetime] = field(default=_now)
    # the agents whose console sockets this worker holds (set by the console): the sweeper's heartbeats
    local_agents: Callable[[], Iterable[int]] = field(default=_nobody)

    @property
    def redis(self) -> aioredis.Redis:
        return self.ownership.redis

    @property
    def keys(self) -> Keys:
        return self.ownership.keys

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.ownership.sessions

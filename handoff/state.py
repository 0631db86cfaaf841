"""Who owns a conversation: the one state machine (bot → queued → agent → bot).

Every change goes through `Ownership.apply(transition)`: an atomic compare-and-set in Redis
(so that of two workers or two agents exactly one wins), then a row in
`conversation_events`, an update of the conversation record, and an event on the bus.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.bus import EventBus
from hub.models import Conversation, ConversationEvent, utcnow
from hub.redis_client import Keys


class Owner(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    AGENT = "agent"


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[Owner]
    target: Owner


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        Transition("request_human", frozenset({Owner.BOT}), Owner.QUEUED),
        Transition("cancel_queue", frozenset({Owner.QUEUED}), Owner.BOT),
        Transition("assign", frozenset({Owner.QUEUED}), Owner.AGENT),
        Transition("requeue", frozenset({Owner.AGENT}), Owner.QUEUED),
        Transition("return_to_bot", frozenset({Owner.AGENT}), Owner.BOT),
        Transition("close", frozenset({Owner.AGENT, Owner.QUEUED}), Owner.BOT),
    )
}

# KEYS: conv hash, queue to add to, queue to remove from, agent set to add to, agent set to remove from
# ARGV: allowed sources (comma list), target, agent id, conversation id, queue score, capacity, group
_TRANSITION_LUA = """
local cur = redis.call('HGET', KEYS[1], 'owner') or 'bot'
if not string.find(',' .. ARGV[1] .. ',', ',' .. cur .. ',', 1, true) then return {0, cur} end
local capacity = tonumber(ARGV[6])
if KEYS[4] ~= '' and capacity > 0 and redis.call('SCARD', KEYS[4]) >= capacity then return {-1, cur} end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'agent_id', ARGV[3], 'group', ARGV[7])
if ARGV[2] ~= 'bot' then redis.call('HSET', KEYS[1], 'fallbacks', 0) end
if KEYS[2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4]) end
if KEYS[3] ~= '' then redis.call('ZREM', KEYS[3], ARGV[4]) end
if KEYS[4] ~= '' then redis.call('SADD', KEYS[4], ARGV[4]) end
if KEYS[5] ~= '' then redis.call('SREM', KEYS[5], ARGV[4]) end
return {1, cur}
"""


@dataclass(frozen=True)
class OwnerState:
    owner: Owner
    agent_id: int | None
    group: str | None


@dataclass(frozen=True)
class TransitionResult:
    ok: bool
    previous: Owner
    reason: str = ""  # "wrong_state" or "at_capacity" when not ok
    state: OwnerState | None = None
    data: dict[str, Any] = field(default_factory=dict)


class IllegalTransition(ValueError):
    pass


class Ownership:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._sessions = sessions
        self._bus = bus
        self._script = redis.register_script(_TRANSITION_LUA)

    async def load(self, conversation_id: str, owner: str, agent_id: int | None, group: str | None) -> None:
        """Put a conversation's state back into Redis from its record (after a Redis restart)."""
        await self._redis.hsetnx(self._keys.conversation(conversation_id), "owner", owner)
        if agent_id is not None:
            await self._redis.hsetnx(self._keys.conversation(conversation_id), "agent_id", str(agent_id))
        if group:
            await self._redis.hsetnx(self._keys.conversation(conversation_id), "group", group)
            if owner == Owner.QUEUED:
                await self._redis.zadd(self._keys.queue(group), {conversation_id: time.time()}, nx=True)

    async def state(self, conversation_id: str) -> OwnerState:
        raw = await self._redis.hgetall(self._keys.conversation(conversation_id))
        agent = raw.get("agent_id") or ""
        return OwnerState(Owner(raw.get("owner", "bot")), int(agent) if agent else None, raw.get("group") or None)

    async def apply(
        self,
        conversation_id: str,
        name: str,
        *,
        actor: str,
        agent_id: int | None = None,
        group: str | None = None,
        capacity: int = 0,
        data: dict[str, Any] | None = None,
    ) -> TransitionResult:
        transition = TRANSITIONS.get(name)
        if transition is None:
            raise IllegalTransition(name)
        current = await self.state(conversation_id)
        group = group or current.group or ""
        keys = self._keys
        queue_add = keys.queue(group) if transition.target == Owner.QUEUED else ""
        queue_remove = keys.queue(group) if Owner.QUEUED in transition.sources and group else ""
        agent_add = keys.agent_conversations(agent_id) if transition.target == Owner.AGENT and agent_id else ""
        agent_remove = (
            keys.agent_conversations(current.agent_id)
            if Owner.AGENT in transition.sources and current.agent_id is not None
            else ""
        )
        new_agent = agent_id if transition.target == Owner.AGENT else None
        ok, previous = await self._script(
            keys=[keys.conversation(conversation_id), queue_add, queue_remove, agent_add, agent_remove],
            args=[
                ",".join(sorted(s.value for s in transition.sources)),
                transition.target.value,
                "" if new_agent is None else str(new_agent),
                conversation_id,
                # requeued conversations go to the front of the line
                0 if name == "requeue" else time.time(),
                capacity,
                group,
            ],
        )
        previous_owner = Owner(previous)
        if ok != 1:
            return TransitionResult(False, previous_owner, "at_capacity" if ok == -1 else "wrong_state")
        if group:
            await self._redis.sadd(keys.queues(), group)
        state = OwnerState(transition.target, new_agent, group or None)
        await self._record(conversation_id, transition, previous_owner, state, actor, data or {})
        await self._bus.publish(
            "state",
            conversation_id=conversation_id,
            transition=name,
            owner=state.owner.value,
            previous=previous_owner.value,
            agent_id=state.agent_id,
            group=state.group,
            data=data or {},
        )
        return TransitionResult(True, previous_owner, state=state)

    async def _record(
        self,
        conversation_id: str,
        transition: Transition,
        previous: Owner,
        state: OwnerState,
        actor: str,
        data: dict[str, Any],
    ) -> None:
        values: dict[str, Any] = {"owner": state.owner.value, "agent_id": state.agent_id, "group": state.group}
        if transition.name == "close":
            values |= {"status": "closed", "closed_at": utcnow(), "disposition": data.get("disposition", "resolved")}
        async with self._sessions() as session, session.begin():
            await session.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values))
            session.add(
                ConversationEvent(
                    conversation_id=conversation_id,
                    kind=transition.name,
                    from_state=previous.value,
                    to_state=state.owner.value,
                    actor=actor,
                    data=data,
                )
            )
        if transition.name == "close":
            await self._redis.delete(self._keys.conversation(conversation_id))

    async def count_fallback(self, conversation_id: str) -> int:
        return int(await self._redis.hincrby(self._keys.conversation(conversation_id), "fallbacks", 1))

    async def reset_fallbacks(self, conversation_id: str) -> None:
        await self._redis.hset(self._keys.conversation(conversation_id), "fallbacks", 0)

    async def queue_position(self, conversation_id: str, group: str) -> int | None:
        rank = await self._redis.zrank(self._keys.queue(group), conversation_id)
        return None if rank is None else rank + 1

    async def waiting(self) -> list[tuple[str, str, float]]:
        """Every waiting conversation as (conversation id, group, since), oldest first."""
        items: list[tuple[str, str, float]] = []
        for group in sorted(await self._redis.smembers(self._keys.queues())):
            for conv, score in await self._redis.zrange(self._keys.queue(group), 0, -1, withscores=True):
                items.append((conv, group, score))
        return sorted(items, key=lambda item: item[2])

    async def agent_conversations(self, agent_id: int) -> set[str]:
        return set(await self._redis.smembers(self._keys.agent_conversations(agent_id)))

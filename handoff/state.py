"""Who owns a conversation: the one state machine (bot → queued → agent → bot).

Every change goes through `Ownership.apply(transition)`: an atomic compare-and-set in Redis
(so that of two workers or two agents exactly one wins), then a row in
`conversation_events`, an update of the conversation record, and an event on the bus.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.bus import EventBus
from core.events import StateEvent
from core.models import utcnow
from core.redis_client import Keys
from handoff.message_writer import writer_for


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
        Transition("transfer", frozenset({Owner.AGENT}), Owner.AGENT),
        Transition("transfer_to_group", frozenset({Owner.AGENT}), Owner.QUEUED),
        Transition("return_to_bot", frozenset({Owner.AGENT}), Owner.BOT),
        Transition("close", frozenset({Owner.AGENT, Owner.QUEUED}), Owner.BOT),
    )
}

# Transitions that put a conversation at the FRONT of its queue (it was already served once).
FRONT_OF_QUEUE = frozenset({"requeue", "transfer_to_group"})
FRONT_OFFSET = 1e10  # front-of-queue scores are `now - FRONT_OFFSET`: ahead of everyone, in their own order

# The whole transition in one script, so that of several workers or agents exactly one wins.
# Key names of groups and agents are built inside the script (from the head and tail of each
# kind of key, core.redis_client.Keys.around) from what the hash holds *now* (the previous
# agent's set, the previous group's queue), so a racing change cannot make the script clean up
# the wrong set.
# KEYS: conv hash, the set of queues
# ARGV: 1 allowed sources (comma list), 2 target, 3 new agent id, 4 conversation id, 5 queue score,
#       6 capacity, 7 group ('' = keep), 8 '1' = the new agent must be `online`,
#       9 expected current agent ('' = any), 10 now, 11-12 a queue key around its group,
#       13-14 an agent's conversations key around its id, 15-16 a presence key around its id
# Returns {code, previous owner, previous agent, group[, version]}: code 1 ok, 0 wrong state, -1 at capacity,
# -2 not online
TRANSITION_LUA = """
local function queue(group) return ARGV[11] .. group .. ARGV[12] end
local function convs(agent) return ARGV[13] .. agent .. ARGV[14] end
local cur = redis.call('HGET', KEYS[1], 'owner') or 'bot'
local cur_agent = redis.call('HGET', KEYS[1], 'agent_id') or ''
local cur_group = redis.call('HGET', KEYS[1], 'group') or ''
if not string.find(',' .. ARGV[1] .. ',', ',' .. cur .. ',', 1, true) then return {0, cur, cur_agent, cur_group} end
if ARGV[9] ~= '' and cur_agent ~= ARGV[9] then return {0, cur, cur_agent, cur_group} end
local target = ARGV[2]
local new_agent = ARGV[3]
local group = ARGV[7]
if group == '' then group = cur_group end
local agent_set = ''
if target == 'agent' then
  if new_agent == '' or (cur == 'agent' and cur_agent == new_agent) then return {0, cur, cur_agent, cur_group} end
  agent_set = convs(new_agent)
  local capacity = tonumber(ARGV[6])
  if capacity > 0 and redis.call('SCARD', agent_set) >= capacity then return {-1, cur, cur_agent, cur_group} end
  if ARGV[8] == '1' and redis.call('HGET', ARGV[15] .. new_agent .. ARGV[16], 'status') ~= 'online' then
    return {-2, cur, cur_agent, cur_group}
  end
end
if cur == 'queued' and cur_group ~= '' then redis.call('ZREM', queue(cur_group), ARGV[4]) end
if cur == 'agent' and cur_agent ~= '' then redis.call('SREM', convs(cur_agent), ARGV[4]) end
redis.call('HSET', KEYS[1], 'owner', target, 'agent_id', new_agent, 'group', group)
if target ~= 'bot' then redis.call('HSET', KEYS[1], 'fallbacks', 0) end
if target == 'queued' then
  redis.call('ZADD', queue(group), ARGV[5], ARGV[4])
  redis.call('SADD', KEYS[2], group)
  redis.call('HSET', KEYS[1], 'queued_at', ARGV[10])
end
if target == 'agent' then
  redis.call('SADD', agent_set, ARGV[4])
  redis.call('HSET', KEYS[1], 'assigned_at', ARGV[10])
  redis.call('HSET', ARGV[15] .. new_agent .. ARGV[16], 'last_assigned', ARGV[10])
end
-- a version that orders the transitions of one conversation (microseconds of the Redis clock,
-- strictly increasing), so the database record is never overwritten by an older one
local clock = redis.call('TIME')
local version = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version <= last then version = last + 1 end
redis.call('HSET', KEYS[1], 'version', string.format('%.0f', version))
return {1, cur, cur_agent, cur_group, string.format('%.0f', version)}
"""


# KEYS: conv hash, the group's queue, the set of queues, the agent's conversations ('' without an agent);
# ARGV: owner, agent id, group, conversation id, now
LOAD_LUA = """
if redis.call('HEXISTS', KEYS[1], 'owner') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'agent_id', ARGV[2], 'group', ARGV[3])
if ARGV[1] == 'queued' and ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], 'NX', ARGV[5], ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[3])
  redis.call('HSET', KEYS[1], 'queued_at', ARGV[5])
end
if ARGV[1] == 'agent' and ARGV[2] ~= '' then
  redis.call('SADD', KEYS[4], ARGV[4])
end
return 1
"""


# Every queue's members: KEYS: the set of queues; ARGV: a queue key around its group (head, tail).
# Returns a flat list: conversation id, group, score, ...
WAITING_LUA = """
local out = {}
for _, group in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local items = redis.call('ZRANGE', ARGV[1] .. group .. ARGV[2], 0, -1, 'WITHSCORES')
  for i = 1, #items, 2 do
    out[#out + 1] = items[i]
    out[#out + 1] = group
    out[#out + 1] = items[i + 1]
  end
end
return out
"""


@dataclass(frozen=True)
class OwnerState:
    owner: Owner
    agent_id: int | None
    group: str | None
    # the once-per-conversation flagged-citizen check has been made (Handoff.trigger)
    flag_checked: bool = field(default=False, compare=False)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> OwnerState:
        """The live state from the conversation's hash (`Keys.conversation`), however it was read."""
        agent = raw.get("agent_id") or ""
        return cls(
            Owner(raw.get("owner", "bot")), int(agent) if agent else None, raw.get("group") or None,
            flag_checked=bool(raw.get("flag_checked")),
        )


@dataclass(frozen=True)
class TransitionResult:
    ok: bool
    previous: Owner
    reason: str = ""  # "wrong_state" or "at_capacity" when not ok
    state: OwnerState | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # with `record_later`: the database record still being written (await it to know it landed)
    recording: asyncio.Task[None] | None = None


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
        self._writer = writer_for(sessions.kw["bind"])
        self._script = redis.register_script(TRANSITION_LUA)
        self._load_script = redis.register_script(LOAD_LUA)
        self._waiting_script = redis.register_script(WAITING_LUA)
        # the group and agent keys the transition script builds (Keys.around)
        self._around = (*keys.around(keys.queue), *keys.around(keys.agent_conversations), *keys.around(keys.presence))

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    async def load(self, conversation_id: str, owner: str, agent_id: int | None, group: str | None) -> None:
        """Put a conversation's state back into Redis from its record (after a Redis restart).

        Only when Redis has no state for it: the record may lag behind a transition another
        worker is still writing, and must never overwrite (or re-queue) the live state."""
        keys = self._keys
        await self._load_script(
            keys=[
                keys.conversation(conversation_id), keys.queue(group or ""), keys.queues(),
                "" if agent_id is None else keys.agent_conversations(agent_id),
            ],
            args=[owner, "" if agent_id is None else str(agent_id), group or "", conversation_id, time.time()],
        )

    async def state(self, conversation_id: str) -> OwnerState:
        return OwnerState.from_hash(await self._redis.hgetall(self._keys.conversation(conversation_id)))

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
        require_online: bool = False,
        expected_agent: int | None = None,
        record_later: bool = False,
    ) -> TransitionResult:
        """Run one named transition. `require_online`: the new agent's presence must be `online`
        (auto-assignment); `expected_agent`: only if this agent owns it now (an agent's own action).

        The event goes out as soon as Redis has decided (Redis is the live state; the record
        follows, ordered by the version), so a screen-pop does not wait for a database commit.
        `record_later`: return before the record is written (`result.recording` writes it), so
        that a drain assigning many conversations does not commit them one after the other."""
        transition = TRANSITIONS.get(name)
        if transition is None:
            raise IllegalTransition(name)
        keys = self._keys
        now = time.time()
        new_agent = agent_id if transition.target == Owner.AGENT else None
        reply = await self._script(
            keys=[keys.conversation(conversation_id), keys.queues()],
            args=[
                ",".join(sorted(s.value for s in transition.sources)),
                transition.target.value,
                "" if new_agent is None else str(new_agent),
                conversation_id,
                # requeued and transferred conversations go to the front of the line
                now - FRONT_OFFSET if name in FRONT_OF_QUEUE else now,
                capacity,
                group or "",
                "1" if require_online else "",
                "" if expected_agent is None else str(expected_agent),
                now,
                *self._around,
            ],
        )
        ok, previous, previous_agent, previous_group = reply[:4]
        previous_owner = Owner(previous)
        if ok != 1:
            reason = {-1: "at_capacity", -2: "not_online"}.get(int(ok), "wrong_state")
            return TransitionResult(False, previous_owner, reason)
        group = group or previous_group or ""
        details = dict(data or {})
        version = int(reply[4])
        if previous_agent and previous_owner == Owner.AGENT:
            details.setdefault("previous_agent_id", int(previous_agent))
        state = OwnerState(transition.target, new_agent, group or None)
        await self._bus.publish(
            StateEvent(
                conversation_id, name, state.owner.value, previous_owner.value, state.agent_id, state.group, details
            )
        )
        record = self._record(conversation_id, transition, previous_owner, state, actor, details, version)
        if record_later:
            task = asyncio.create_task(record)
            return TransitionResult(True, previous_owner, state=state, data=details, recording=task)
        await record
        return TransitionResult(True, previous_owner, state=state, data=details)

    async def _record(
        self,
        conversation_id: str,
        transition: Transition,
        previous: Owner,
        state: OwnerState,
        actor: str,
        data: dict[str, Any],
        version: int,
    ) -> None:
        values: dict[str, Any] = {
            "owner": state.owner.value, "agent_id": state.agent_id, "group": state.group, "state_version": version,
        }
        if transition.name == "close":
            values |= {"status": "closed", "closed_at": utcnow(), "disposition": data.get("disposition", "resolved")}
            if data.get("summary"):
                values["summary"] = str(data["summary"])
        elif transition.name == "return_to_bot" and data.get("disposition"):  # the human part's wrap-up
            values["disposition"] = str(data["disposition"])
            if data.get("summary"):
                values["summary"] = str(data["summary"])
        # group-committed with this worker's other writes (handoff.message_writer); two workers'
        # records of one conversation's transitions may land out of order: only a newer version
        # than the record's may change it (the Lua script orders them)
        await self._writer.record_transition(
            conversation_id,
            values,
            {
                "kind": transition.name,
                "from_state": previous.value,
                "to_state": state.owner.value,
                "actor": actor,
                "data": {**data, "seq": version},
                "created_at": utcnow(),
            },
            version,
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
        """Every waiting conversation as (conversation id, group, since), oldest first (one round trip)."""
        raw = await self._waiting_script(keys=[self._keys.queues()], args=[*self._keys.around(self._keys.queue)])
        items = [(raw[i], raw[i + 1], float(raw[i + 2])) for i in range(0, len(raw), 3)]
        return sorted(items, key=lambda item: (item[2], item[1]))

    async def agent_conversations(self, agent_id: int) -> set[str]:
        return set(await self._redis.smembers(self._keys.agent_conversations(agent_id)))

"""Routing and assignment: which skill group a handoff goes to, and which agent gets it.

Every ownership change still goes through `Ownership.apply` (one Lua compare-and-set each):
this module only decides *which* transition to try and with whom. Auto-assignment tries the
candidates in the group's strategy order, each with the CAS, so of several workers racing for
one conversation exactly one wins and no agent goes past capacity.

Redis keys (core.redis_client.Keys): `group_stats(group)` (wait_avg, handle_avg), `last_agent(citizen)`,
`served(conversation)`; on the conversation's hash: citizen_id, last_branch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from handoff.context import HandoffContext
from handoff.errors import HandoffError
from handoff.presence import Presence
from handoff.state import Owner, OwnerState

log = logging.getLogger(__name__)

CSAT_TTL = 7 * 24 * 3600
LAST_AGENT_TTL = 90 * 24 * 3600
EWMA = 0.2
DRAIN_WAIT_SECONDS = 1.0  # how long a handoff waits for a running drain before telling its position

# A group's moving average (Keys.group_stats), as a Lua function the scripts below share:
# the new value weighted by EWMA, rounded to hundredths.
EWMA_FN = """
local function ewma(key, field, value, weight)
  local old = redis.call('HGET', key, field)
  if old then value = (1 - weight) * tonumber(old) + weight * value end
  redis.call('HSET', key, field, string.format('%.2f', math.floor(value * 100 + 0.5) / 100))
end
"""
# KEYS: the group's stats hash; ARGV: field, new value, weight
EWMA_LUA = EWMA_FN + "ewma(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))\nreturn 1\n"

# An agent now serves a conversation, in one round trip: they count for its CSAT, they are the
# citizen's last agent (last-agent routing), and (ARGV 4 = '1': it came from the queue) the group's
# average wait learns of it. KEYS: the conversation hash, its served set; ARGV: agent id, CSAT ttl,
# last-agent ttl, '1' = it waited, now, EWMA weight, the last-agent key around the citizen id (head,
# tail), the stats key around the group (head, tail). Returns owner, agent id, group now.
SERVED_LUA = EWMA_FN + """
local fields = redis.call('HMGET', KEYS[1], 'citizen_id', 'queued_at', 'group', 'owner', 'agent_id')
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
if fields[1] then redis.call('SET', ARGV[7] .. fields[1] .. ARGV[8], ARGV[1], 'EX', tonumber(ARGV[3])) end
if ARGV[4] == '1' and fields[2] and fields[3] then
  local waited = tonumber(ARGV[5]) - tonumber(fields[2])
  ewma(ARGV[9] .. fields[3] .. ARGV[10], 'wait_avg', waited, tonumber(ARGV[6]))
end
return {fields[4] or 'bot', fields[5] or '', fields[3] or ''}
"""


class Assignment:
    def __init__(self, ctx: HandoffContext, presence: Presence) -> None:
        self.ctx = ctx
        self.presence = presence
        self._ewma = ctx.redis.register_script(EWMA_LUA)
        self._served = ctx.redis.register_script(SERVED_LUA)
        self._drain_locks: dict[str, asyncio.Lock] = {}
        self._drain_dirty: dict[str, bool] = {}

    # ------------------------------------------------------------------ routing
    async def candidates(self, group_name: str, citizen_id: int | None = None) -> list[int]:
        """Online members of the group under capacity, in the group's strategy order."""
        eligible = await self.eligible(group_name)
        return await self.order(group_name, eligible, citizen_id)

    async def eligible(self, group_name: str) -> list[dict[str, Any]]:
        config = self.ctx.config
        group = config.group(group_name)
        return [
            a
            for a in await self.presence.agents()
            if a["status"] == "online" and a["load"] < config.capacity and group.has_member(a["username"], a["role"])
        ]

    async def order(self, group_name: str, eligible: list[dict[str, Any]], citizen_id: int | None) -> list[int]:
        group = self.ctx.config.group(group_name)
        if group.strategy in ("least_busy", "last_agent"):
            ranked = sorted(eligible, key=lambda a: (a["load"], a["last_assigned"], a["agent_id"]))
        else:  # longest_idle: the longest since their last assignment
            ranked = sorted(eligible, key=lambda a: (a["last_assigned"], a["load"], a["agent_id"]))
        order = [a["agent_id"] for a in ranked]
        if group.strategy == "last_agent" and citizen_id is not None:
            last = await self.ctx.redis.get(self.ctx.keys.last_agent(citizen_id))
            if last and int(last) in order:
                order.remove(int(last))
                order.insert(0, int(last))
        return order

    async def members_present(self, group_name: str) -> bool:
        group = self.ctx.config.group(group_name)
        return any(
            a["status"] != "offline" and group.has_member(a["username"], a["role"])
            for a in await self.presence.agents()
        )

    async def route(self, conversation_id: str, *, intent: str | None = None, explicit: str | None = None) -> str:
        """The group a handoff goes to; a group with nobody signed in overflows to the default group."""
        config = self.ctx.config
        branch = await self.ctx.redis.hget(self.ctx.keys.conversation(conversation_id), "last_branch")
        group = config.group_for(explicit=explicit, intent=intent, branch=branch)
        if group != config.default_group and not explicit and not await self.members_present(group):
            group = config.default_group
        return group

    async def remember_branch(self, conversation_id: str, branch: str) -> None:
        if branch:
            await self.ctx.redis.hset(self.ctx.keys.conversation(conversation_id), "last_branch", branch)

    def closed_text(self, group: str) -> str | None:
        return self.ctx.config.closed_text(group, self.ctx.clock())

    async def citizen_merged(self, keep_id: int, merged_id: int, open_conversation_ids: list[str]) -> None:
        """After a CRM merge: live conversations and last-agent routing follow the surviving profile."""
        redis, keys = self.ctx.redis, self.ctx.keys
        conversation_keys = [keys.conversation(conversation_id) for conversation_id in open_conversation_ids]
        async with redis.pipeline(transaction=False) as pipe:
            for key in conversation_keys:
                pipe.exists(key)
            live = [key for key, exists in zip(conversation_keys, await pipe.execute(), strict=True) if exists]
        async with redis.pipeline(transaction=False) as pipe:
            for key in live:
                pipe.hset(key, "citizen_id", keep_id)
                pipe.hdel(key, "view")  # the dispatcher's cached conversation view (flow/open_conversations.py)
            pipe.copy(keys.last_agent(merged_id), keys.last_agent(keep_id))
            await pipe.execute()

    # ------------------------------------------------------------------ assignment
    async def drain(self, group_name: str) -> int:
        """Assign waiting conversations of one group to eligible agents, front of the queue first.

        One drain per group at a time in this worker: a request arriving while one runs marks
        the group dirty and the running drain goes round again (so a burst of handoffs costs a
        few passes, not one pass each). Workers may drain the same group at once: the CAS
        decides every conversation exactly once."""
        group = self.ctx.config.group(group_name)
        if not group.auto_assign:
            return 0
        self._drain_dirty[group.name] = True
        lock = self._drain_locks.setdefault(group.name, asyncio.Lock())
        if lock.locked():
            return 0
        followups: list[asyncio.Task[None]] = []
        assigned = 0
        async with lock:
            while self._drain_dirty.get(group.name):
                self._drain_dirty[group.name] = False
                assigned += await self._drain_pass(group.name, group.strategy, followups)
        # the greetings, statistics and records finish outside the lock: the next handoff's
        # assignment does not wait for this one's database writes
        for outcome in await asyncio.gather(*followups, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.error("after-assignment work failed: %r", outcome)
        return assigned

    async def drained(self, group_name: str) -> None:
        """Wait (a while at most) until no drain of this group runs in this worker: one running
        when a handoff arrived takes that handoff in its next pass."""
        lock = self._drain_locks.get(self.ctx.config.group(group_name).name)
        if lock is None or not lock.locked():
            return
        try:
            async with asyncio.timeout(DRAIN_WAIT_SECONDS):
                async with lock:
                    pass
        except TimeoutError:
            pass

    async def _drain_pass(self, group: str, strategy: str, followups: list[asyncio.Task[None]]) -> int:
        """One pass over the front of the queue; the work that follows each assignment (its
        record, the greeting) is started and left in `followups` for `drain` to await."""
        ctx = self.ctx
        capacity = ctx.config.capacity
        eligible = await self.eligible(group)
        free = sum(capacity - a["load"] for a in eligible)
        if free <= 0:
            return 0
        assigned = 0
        by_id = {a["agent_id"]: a for a in eligible}
        for conversation_id in await ctx.redis.zrange(ctx.keys.queue(group), 0, free - 1):
            if not by_id:
                break
            citizen = None
            if strategy == "last_agent":  # the only strategy that looks at who the citizen is
                citizen = await ctx.redis.hget(ctx.keys.conversation(conversation_id), "citizen_id")
            order = await self.order(group, list(by_id.values()), int(citizen) if citizen else None)
            for agent_id in order:
                result = await ctx.ownership.apply(
                    conversation_id,
                    "assign",
                    actor="system:auto",
                    agent_id=agent_id,
                    capacity=capacity,
                    require_online=True,
                    data={"auto": True, "strategy": strategy},
                    record_later=True,
                )
                if result.ok:
                    assigned += 1
                    if result.recording is not None:
                        followups.append(result.recording)
                    agent = by_id[agent_id]
                    agent["load"] += 1
                    agent["last_assigned"] = time.time()
                    if agent["load"] >= capacity:
                        by_id.pop(agent_id)
                    # the greeting and the statistics run beside the next assignments
                    followups.append(asyncio.create_task(self.after_assign(conversation_id, agent_id)))
                    break
                if result.reason == "wrong_state":
                    break  # another worker assigned it, or it left the queue
                by_id.pop(agent_id, None)  # full or no longer online: not this pass
        return assigned

    async def drain_for_agent(self, agent_id: int) -> None:
        found = await self.presence.user(agent_id)
        if found is None:
            return
        username, _name, role = found
        for group in self.ctx.config.groups.values():
            if group.auto_assign and group.has_member(username, role):
                await self.drain(group.name)

    async def drain_all(self) -> None:
        for group in self.ctx.config.groups.values():
            if group.auto_assign:
                await self.drain(group.name)

    async def accept(self, conversation: Any, agent: Any) -> None:
        """Manual 接入 from the console (any agent, any group's queue)."""
        result = await self.ctx.ownership.apply(
            conversation.id, "assign", actor=f"agent:{agent.id}", agent_id=agent.id, capacity=self.ctx.config.capacity
        )
        if not result.ok:
            raise HandoffError("at_capacity" if result.reason == "at_capacity" else "taken")
        await self.after_assign(conversation.id, agent.id)

    async def after_assign(self, conversation_id: str, agent_id: int, *, waited: bool = True) -> None:
        """The citizen is greeted by name; last-agent routing, the CSAT's agents and (`waited`: it came
        from the queue) the group's average wait learn of it."""
        owner, serving, group = await self.served_by(conversation_id, agent_id, waited=waited)
        conversation = await self.ctx.conversations.fixed(conversation_id)  # only to say something in it
        if conversation is not None:
            name = await self.presence.display_name(agent_id) or ""
            # the owner as read above (the greeting goes to whoever serves it now)
            state = OwnerState(Owner(owner or "bot"), int(serving) if serving else None, group or None)
            await self.ctx.speaker.say(
                conversation, "system", self.ctx.config.texts["assigned_reply"].format(agent=name), state=state
            )

    async def served_by(self, conversation_id: str, agent_id: int, *, waited: bool = False) -> list[str]:
        """An agent now serves this conversation (`SERVED_LUA`, one round trip); returns its owner,
        serving agent and group as they are now."""
        keys = self.ctx.keys
        return await self._served(
            keys=[keys.conversation(conversation_id), keys.served(conversation_id)],
            args=[
                agent_id, CSAT_TTL, LAST_AGENT_TTL, "1" if waited else "", time.time(), EWMA,
                *keys.around(keys.last_agent), *keys.around(keys.group_stats),
            ],
        )

    async def average(self, group: str, field: str, value: float) -> None:
        await self._ewma(keys=[self.ctx.keys.group_stats(group)], args=[field, value, EWMA])

    async def handled(self, conversation_id: str) -> None:
        """An agent is done with a conversation (closed, returned, transferred): the group's
        average handle time learns of it."""
        key = self.ctx.keys.conversation(conversation_id)
        assigned_at, group = await self.ctx.redis.hmget(key, "assigned_at", "group")
        if assigned_at and group:
            await self.average(group, "handle_avg", time.time() - float(assigned_at))

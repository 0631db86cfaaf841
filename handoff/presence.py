"""Agents' presence (online / busy / away / offline) and load, and who they are.

Each console socket is a heartbeat; an agent without one for `heartbeat_timeout` seconds is
marked offline by the sweeper (handoff.sweeper), idempotently across workers.

Redis keys (core.redis_client.Keys): `presence(agent_id)` (hash: status, last_seen, username,
role, display_name, last_assigned), `agents()` (every agent that ever connected).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from core.events import PresenceEvent
from core.models import User
from handoff.context import HandoffContext
from handoff.errors import HandoffError

PRESENCE_STATUSES = ("online", "busy", "away", "offline")
SETTABLE_STATUSES = ("online", "busy", "away")
ONLINE_CACHE_SECONDS = 1.0

# Mark an agent offline only if their heartbeat is still stale (idempotent across workers).
# KEYS: the agent's presence hash; ARGV: the cutoff. Returns 1 marked now, 2 already offline, 0 alive
MARK_OFFLINE_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status == 'offline' then return 2 end
local seen = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0')
if seen >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'offline')
return 1
"""

ROSTER_FIELDS = ("status", "last_seen", "username", "display_name", "role", "last_assigned")
# Every known agent as a flat list: id, the ROSTER_FIELDS of their presence, their load.
# KEYS: the set of agents; ARGV: a presence key around its id (head, tail), an agent's
# conversations key around its id (head, tail)
ROSTER_LUA = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HMGET', ARGV[1] .. id .. ARGV[2],
    'status', 'last_seen', 'username', 'display_name', 'role', 'last_assigned')
  out[#out + 1] = id
  for i = 1, 6 do out[#out + 1] = fields[i] or '' end
  out[#out + 1] = redis.call('SCARD', ARGV[3] .. id .. ARGV[4])
end
return out
"""

Staff = tuple[str, str, str]  # username, display name, role


class Presence:
    def __init__(self, ctx: HandoffContext) -> None:
        self.ctx = ctx
        # an agent came online: what waits for them is assigned (set by the Handoff: the assignment)
        self.on_online: Callable[[int], Awaitable[None]] | None = None
        self._users: dict[int, Staff] = {}  # id → (username, display_name, role)
        self._mark_offline = ctx.redis.register_script(MARK_OFFLINE_LUA)
        self._roster = ctx.redis.register_script(ROSTER_LUA)
        self._online_cache: dict[str, tuple[float, int]] = {}

    def key(self, agent_id: int | str) -> str:
        return self.ctx.keys.presence(agent_id)

    # ------------------------------------------------------------------ who
    def remember(self, user: Any) -> None:
        """A staff member seen on a socket: their name and role without a database read later."""
        self._users[user.id] = (user.username, user.display_name, user.role)

    async def user(self, agent_id: int) -> Staff | None:
        if agent_id not in self._users:
            async with self.ctx.sessions() as session:
                row = await session.get(User, agent_id)
            if row is None:
                return None
            self._users[agent_id] = (row.username, row.display_name, row.role)
        return self._users[agent_id]

    async def user_by_name(self, username: str) -> int | None:
        async with self.ctx.sessions() as session:
            found = await session.execute(select(User.id).where(User.username == username))
            return found.scalar_one_or_none()

    async def display_name(self, agent_id: int | None) -> str | None:
        if agent_id is None:
            return None
        found = await self.user(agent_id)
        return found[1] if found else None

    # ------------------------------------------------------------------ presence
    async def connect(self, user: Any) -> str:
        """An agent's console socket opened: they are online (keeping busy/away across reloads)."""
        self.remember(user)
        redis, key = self.ctx.redis, self.key(user.id)
        status = await redis.hget(key, "status")
        if status not in ("busy", "away"):
            status = "online"
        await redis.hset(
            key,
            mapping={
                "status": status,
                "last_seen": time.time(),
                "username": user.username,
                "display_name": user.display_name,
                "role": user.role,
            },
        )
        await redis.sadd(self.ctx.keys.agents(), user.id)
        await self.changed(user.id, status)
        return status

    async def heartbeats(self, agent_ids: list[int]) -> None:
        """Agents with a live socket are seen now (one round trip for all of them)."""
        if not agent_ids:
            return
        now = time.time()
        pipe = self.ctx.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            key = self.key(agent_id)
            pipe.hset(key, "last_seen", now)
            pipe.hget(key, "status")
        replies = await pipe.execute()
        for agent_id, status in zip(agent_ids, replies[1::2], strict=True):
            if status == "offline":  # came back after the sweeper gave up on them
                await self.ctx.redis.hset(self.key(agent_id), "status", "online")
                await self.changed(agent_id, "online")

    async def set(self, agent_id: int, status: str) -> str:
        if status not in SETTABLE_STATUSES:
            raise HandoffError("bad_status")
        await self.ctx.redis.hset(self.key(agent_id), mapping={"status": status, "last_seen": time.time()})
        await self.ctx.redis.sadd(self.ctx.keys.agents(), agent_id)
        await self.changed(agent_id, status)
        return status

    async def of(self, agent_id: int) -> dict[str, Any]:
        raw = await self.ctx.redis.hgetall(self.key(agent_id))
        return {
            "agent_id": agent_id,
            "status": raw.get("status", "offline"),
            "last_seen": float(raw.get("last_seen") or 0),
            "username": raw.get("username", ""),
            "display_name": raw.get("display_name", ""),
            "role": raw.get("role", ""),
            "last_assigned": float(raw.get("last_assigned") or 0),
        }

    async def changed(self, agent_id: int, status: str) -> None:
        self._online_cache.clear()
        await self.ctx.bus.publish(PresenceEvent(agent_id, status))
        if status == "online" and self.on_online is not None:
            await self.on_online(agent_id)

    async def mark_silent_offline(self, cutoff: float) -> list[tuple[int, int]]:
        """Every known agent silent since before `cutoff` is marked offline (one round trip):
        (agent id, 1 marked now | 2 was already offline | 0 alive) for each."""
        keys = self.ctx.keys
        agent_ids = [int(raw) for raw in await self.ctx.redis.smembers(keys.agents())]
        if not agent_ids:
            return []
        pipe = self.ctx.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            await self._mark_offline(keys=[self.key(agent_id)], args=[cutoff], client=pipe)
        return list(zip(agent_ids, [int(outcome) for outcome in await pipe.execute()], strict=True))

    # ------------------------------------------------------------------ the roster
    async def agents(self) -> list[dict[str, Any]]:
        """Every known agent's presence and load: one Redis call (every drain pass asks)."""
        keys = self.ctx.keys
        raw = await self._roster(
            keys=[keys.agents()], args=[*keys.around(keys.presence), *keys.around(keys.agent_conversations)]
        )
        capacity = self.ctx.config.capacity
        out = []
        for index in range(0, len(raw), len(ROSTER_FIELDS) + 2):
            agent_id, *fields, load = raw[index : index + len(ROSTER_FIELDS) + 2]
            info = dict(zip(ROSTER_FIELDS, fields, strict=True))
            out.append(
                {
                    "agent_id": int(agent_id),
                    "username": info["username"] or "",
                    "display_name": info["display_name"] or "",
                    "role": info["role"] or "",
                    "status": info["status"] or "offline",
                    "last_seen": float(info["last_seen"] or 0),
                    "last_assigned": float(info["last_assigned"] or 0),
                    "load": int(load),
                    "capacity": capacity,
                }
            )
        return sorted(out, key=lambda a: a["agent_id"])

    async def online_members(self, group: str) -> int:
        """How many of a group's members are online (cached for a second: every waiting citizen's
        state frame asks, and a burst of transitions asks for each of them)."""
        cached = self._online_cache.get(group)
        now = time.monotonic()
        if cached and now - cached[0] < ONLINE_CACHE_SECONDS:
            return cached[1]
        cfg_group = self.ctx.config.group(group)
        count = sum(
            1 for a in await self.agents() if a["status"] == "online" and cfg_group.has_member(a["username"], a["role"])
        )
        self._online_cache[group] = (now, count)
        return count

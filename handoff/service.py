"""Queues, routing and assignment, presence, waiting estimates, 留言 tickets, transfer, close and CSAT.

Every ownership change still goes through `Ownership.apply` (one Lua compare-and-set each):
this module only decides *which* transition to try and with whom. Auto-assignment tries
the candidates in the group's strategy order, each with the CAS, so of several workers
racing for one conversation exactly one wins and no agent goes past capacity.

Redis keys (under the deployment prefix):
  presence:{agent_id}      hash: status online|busy|away|offline, last_seen, username, role,
                           display_name, last_assigned
  handoff:agents           set of agent ids that ever connected (the sweeper's list)
  handoff:stats:{group}    hash: wait_avg, handle_avg (moving averages, seconds)
  handoff:last_agent:{cid} the agent who last served a citizen (last-agent-first routing)
  handoff:served:{conv}    set of agents who served a conversation (CSAT survives transfers)
  handoff:csat:{conv}      the agent a CSAT question was sent for (a rating is accepted while it lives)
  handoff:sweeper          the sweeper's lock (one worker sweeps per interval)
  handoff:watch:{user_id}  set of conversations a supervisor watches (survives reconnects to any worker)
  conv:{id} (extra fields) citizen_id, last_branch, memo, memo_from, offered, flag_checked
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.bus import EventBus
from core.events import PresenceEvent, WatchEvent, WhisperEvent
from core.models import Citizen, Conversation, ConversationEvent, CsatRating, Message, User
from crm import add_message_ticket
from handoff.board_details import describe
from handoff.routing import HandoffConfig
from handoff.speaker import Speaker
from handoff.state import Owner, Ownership, OwnerState

log = logging.getLogger(__name__)

PRESENCE_STATUSES = ("online", "busy", "away", "offline")
SETTABLE_STATUSES = ("online", "busy", "away")
DISPOSITIONS = ("resolved", "unresolved", "ticket_created", "citizen_left", "transferred_out", "spam", "other")
MAX_MEMO = 500
MAX_SUMMARY = 1000
MAX_TICKET = 1000
MAX_COMMENT = 500
CSAT_TTL = 7 * 24 * 3600
LAST_AGENT_TTL = 90 * 24 * 3600
WATCH_TTL = 24 * 3600  # a supervisor's watch list outlives a shift's reconnects, not the shift
EWMA = 0.2
DRAIN_WAIT_SECONDS = 1.0  # how long a handoff waits for a running drain before telling its position

# Mark an agent offline only if their heartbeat is still stale (idempotent across workers).
_MARK_OFFLINE_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status == 'offline' then return 2 end
local seen = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0')
if seen >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'offline')
return 1
"""


# For each conversation (KEYS: their hashes; ARGV: the key prefix, then their ids in the same order):
# owner, agent id, group, rank in the group's queue ('' when not there), the group's average handle time
_STATES_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local fields = redis.call('HMGET', key, 'owner', 'agent_id', 'group')
  local owner = fields[1] or 'bot'
  local group = fields[3] or ''
  local rank = ''
  local handle = ''
  if owner == 'queued' and group ~= '' then
    rank = redis.call('ZRANK', ARGV[1] .. 'queue:' .. group, ARGV[i + 1]) or ''
    handle = redis.call('HGET', ARGV[1] .. 'handoff:stats:' .. group, 'handle_avg') or ''
  end
  out[i] = {owner, fields[2] or '', group, rank, handle}
end
return out
"""


# A group's moving average (handoff:stats:{group}), as a Lua function the scripts below share:
# the new value weighted by EWMA, rounded to hundredths.
_EWMA_FN = """
local function ewma(key, field, value, weight)
  local old = redis.call('HGET', key, field)
  if old then value = (1 - weight) * tonumber(old) + weight * value end
  redis.call('HSET', key, field, string.format('%.2f', math.floor(value * 100 + 0.5) / 100))
end
"""
# KEYS: the group's stats hash; ARGV: field, new value, weight
_EWMA_LUA = _EWMA_FN + "ewma(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))\nreturn 1\n"

# An agent now serves a conversation, in one round trip: they count for its CSAT, they are the
# citizen's last agent (last-agent routing), and (ARGV 6 = '1': it came from the queue) the group's
# average wait learns of it. KEYS: the conversation hash; ARGV: prefix, conversation id, agent id,
# CSAT ttl, last-agent ttl, '1' = it waited, now, EWMA weight. Returns owner, agent id, group now.
_SERVED_LUA = _EWMA_FN + """
local fields = redis.call('HMGET', KEYS[1], 'citizen_id', 'queued_at', 'group', 'owner', 'agent_id')
local served = ARGV[1] .. 'handoff:served:' .. ARGV[2]
redis.call('SADD', served, ARGV[3])
redis.call('EXPIRE', served, tonumber(ARGV[4]))
if fields[1] then redis.call('SET', ARGV[1] .. 'handoff:last_agent:' .. fields[1], ARGV[3], 'EX', tonumber(ARGV[5])) end
if ARGV[6] == '1' and fields[2] and fields[3] then
  local waited = tonumber(ARGV[7]) - tonumber(fields[2])
  ewma(ARGV[1] .. 'handoff:stats:' .. fields[3], 'wait_avg', waited, tonumber(ARGV[8]))
end
return {fields[4] or 'bot', fields[5] or '', fields[3] or ''}
"""


ROSTER_FIELDS = ("status", "last_seen", "username", "display_name", "role", "last_assigned")
# Every known agent as a flat list: id, the ROSTER_FIELDS of their presence, their load. ARGV: prefix
_ROSTER_LUA = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'handoff:agents')) do
  local fields = redis.call('HMGET', ARGV[1] .. 'presence:' .. id,
    'status', 'last_seen', 'username', 'display_name', 'role', 'last_assigned')
  out[#out + 1] = id
  for i = 1, 6 do out[#out + 1] = fields[i] or '' end
  out[#out + 1] = redis.call('SCARD', ARGV[1] .. 'agent:' .. id .. ':convs')
end
return out
"""


class HandoffError(ValueError):
    """A refused request, with a code for clients and a reason in Chinese."""

    REASONS = {
        "bad_field": "请求内容不完整。",
        "empty": "内容不能为空。",
        "too_long": "内容太长了。",
        "bad_status": "状态只能是 在线、忙碌 或 离开。",
        "bad_score": "评分只能是 1 到 5 分。",
        "bad_disposition": "结束原因不正确。",
        "not_yours": "该会话不在您的接待列表中。",
        "taken": "该会话已被其他坐席接入或已结束。",
        "at_capacity": "对方接待的会话已达上限。",
        "unknown_agent": "找不到该坐席。",
        "unknown_group": "找不到该技能组。",
        "agent_unavailable": "对方当前不在线或已设置为离开。",
        "not_offered": "该会话没有待评价的服务。",
        "not_found": "找不到该会话。",
    }

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = self.REASONS.get(code, "操作失败。")


class Handoff:
    def __init__(
        self, speaker: Speaker, bus: EventBus, settings: Any, ownership: Ownership, conversations: Any, citizens: Any
    ) -> None:
        self.speaker = speaker  # the message path's say(): greetings, queue positions, thanks
        self.bus = bus
        self.config = HandoffConfig.from_settings(settings)
        self.ownership = ownership
        self.conversations = conversations
        self.citizens = citizens
        self.redis = ownership.redis
        self.keys = ownership.keys
        self.sessions = ownership.sessions
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.local_agents: Callable[[], Iterable[int]] = lambda: ()  # set by the console: sockets on this worker
        self.on_presence: Callable[[int, str], Any] | None = None
        self._users: dict[int, tuple[str, str, str]] = {}  # id → (username, display_name, role)
        self._mark_offline = self.redis.register_script(_MARK_OFFLINE_LUA)
        self._states_script = self.redis.register_script(_STATES_LUA)
        self._roster_script = self.redis.register_script(_ROSTER_LUA)
        self._ewma_script = self.redis.register_script(_EWMA_LUA)
        self._served_script = self.redis.register_script(_SERVED_LUA)
        self._worker = uuid.uuid4().hex
        self._drain_locks: dict[str, asyncio.Lock] = {}
        self._drain_dirty: dict[str, bool] = {}
        self._online_cache: dict[str, tuple[float, int]] = {}

    # ------------------------------------------------------------------ keys
    def _k(self, name: str) -> str:
        return f"{self.keys.prefix}{name}"

    def presence_key(self, agent_id: int | str) -> str:
        return self._k(f"presence:{agent_id}")

    # ------------------------------------------------------------------ users
    async def user(self, agent_id: int) -> tuple[str, str, str] | None:
        if agent_id not in self._users:
            async with self.sessions() as session:
                row = await session.get(User, agent_id)
            if row is None:
                return None
            self._users[agent_id] = (row.username, row.display_name, row.role)
        return self._users[agent_id]

    async def user_by_name(self, username: str) -> int | None:
        async with self.sessions() as session:
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
        self._users[user.id] = (user.username, user.display_name, user.role)
        key = self.presence_key(user.id)
        status = await self.redis.hget(key, "status")
        if status not in ("busy", "away"):
            status = "online"
        await self.redis.hset(
            key,
            mapping={
                "status": status,
                "last_seen": time.time(),
                "username": user.username,
                "display_name": user.display_name,
                "role": user.role,
            },
        )
        await self.redis.sadd(self._k("handoff:agents"), user.id)
        await self._presence_changed(user.id, status)
        return status

    async def heartbeat(self, agent_id: int) -> None:
        await self.heartbeats([agent_id])

    async def heartbeats(self, agent_ids: list[int]) -> None:
        """Agents with a live socket are seen now (one round trip for all of them)."""
        if not agent_ids:
            return
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            key = self.presence_key(agent_id)
            pipe.hset(key, "last_seen", now)
            pipe.hget(key, "status")
        replies = await pipe.execute()
        for agent_id, status in zip(agent_ids, replies[1::2], strict=True):
            if status == "offline":  # came back after the sweeper gave up on them
                await self.redis.hset(self.presence_key(agent_id), "status", "online")
                await self._presence_changed(agent_id, "online")

    async def set_presence(self, agent_id: int, status: str) -> str:
        if status not in SETTABLE_STATUSES:
            raise HandoffError("bad_status")
        await self.redis.hset(self.presence_key(agent_id), mapping={"status": status, "last_seen": time.time()})
        await self.redis.sadd(self._k("handoff:agents"), agent_id)
        await self._presence_changed(agent_id, status)
        return status

    async def presence(self, agent_id: int) -> dict[str, Any]:
        raw = await self.redis.hgetall(self.presence_key(agent_id))
        return {
            "agent_id": agent_id,
            "status": raw.get("status", "offline"),
            "last_seen": float(raw.get("last_seen") or 0),
            "username": raw.get("username", ""),
            "display_name": raw.get("display_name", ""),
            "role": raw.get("role", ""),
            "last_assigned": float(raw.get("last_assigned") or 0),
        }

    async def _presence_changed(self, agent_id: int, status: str) -> None:
        self._online_cache.clear()
        await self.bus.publish(PresenceEvent(agent_id, status))
        if status == "online":
            await self.drain_for_agent(agent_id)

    async def agents(self) -> list[dict[str, Any]]:
        """Every known agent's presence and load: one Redis call (every drain pass asks)."""
        raw = await self._roster_script(args=[self.keys.prefix])
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
                    "capacity": self.config.capacity,
                }
            )
        return sorted(out, key=lambda a: a["agent_id"])

    # ------------------------------------------------------------------ routing
    async def candidates(self, group_name: str, citizen_id: int | None = None) -> list[int]:
        """Online members of the group under capacity, in the group's strategy order."""
        eligible = await self._eligible(group_name)
        return await self._order(group_name, eligible, citizen_id)

    async def _eligible(self, group_name: str) -> list[dict[str, Any]]:
        group = self.config.group(group_name)
        return [
            a
            for a in await self.agents()
            if a["status"] == "online"
            and a["load"] < self.config.capacity
            and group.has_member(a["username"], a["role"])
        ]

    async def _order(self, group_name: str, eligible: list[dict[str, Any]], citizen_id: int | None) -> list[int]:
        group = self.config.group(group_name)
        if group.strategy in ("least_busy", "last_agent"):
            ranked = sorted(eligible, key=lambda a: (a["load"], a["last_assigned"], a["agent_id"]))
        else:  # longest_idle: the longest since their last assignment
            ranked = sorted(eligible, key=lambda a: (a["last_assigned"], a["load"], a["agent_id"]))
        order = [a["agent_id"] for a in ranked]
        if group.strategy == "last_agent" and citizen_id is not None:
            last = await self.redis.get(self._k(f"handoff:last_agent:{citizen_id}"))
            if last and int(last) in order:
                order.remove(int(last))
                order.insert(0, int(last))
        return order

    async def members_present(self, group_name: str) -> bool:
        group = self.config.group(group_name)
        return any(a["status"] != "offline" and group.has_member(a["username"], a["role"]) for a in await self.agents())

    async def route(self, conversation_id: str, *, intent: str | None = None, explicit: str | None = None) -> str:
        """The group a handoff goes to; a group with nobody signed in overflows to the default group."""
        branch = await self.redis.hget(self.keys.conversation(conversation_id), "last_branch")
        group = self.config.group_for(explicit=explicit, intent=intent, branch=branch)
        if group != self.config.default_group and not explicit and not await self.members_present(group):
            group = self.config.default_group
        return group

    async def remember_branch(self, conversation_id: str, branch: str) -> None:
        if branch:
            await self.redis.hset(self.keys.conversation(conversation_id), "last_branch", branch)

    def closed_text(self, group: str) -> str | None:
        return self.config.closed_text(group, self.clock())

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
        group = await self.route(conversation.id, intent=intent, explicit=group)
        state = await self.ownership.state(conversation.id)
        if state.owner == Owner.BOT:
            closed = self.closed_text(group)
            if closed is not None:
                meta = {"offer_leave_message": True, "off_hours": True, "group": group}
                await self.speaker.say(conversation, "system", closed, meta=meta)
                return ""
            await self.redis.hset(
                self.keys.conversation(conversation.id),
                mapping={
                    "citizen_id": conversation.citizen_id,
                    "handoff_reason": reason,
                    "handoff_intent": intent or "",
                },
            )
        # the drain (and so the agent's screen-pop) starts at once: the transition's record is
        # written beside it, and the queue position is told only if the citizen still waits
        result = await self.ownership.apply(
            conversation.id, "request_human", actor="citizen" if reason == "button" else "bot",
            group=group, data={"reason": reason, **({"intent": intent} if intent else {})}, record_later=True,
        )
        try:
            if result.ok:
                await self.drain(group)
                await self.drained(group)  # a drain already running here may be assigning it
            state = await self.ownership.state(conversation.id)
            if state.owner == Owner.AGENT:
                return ""  # an agent has it (the assignment greets the citizen)
            position = await self.ownership.queue_position(conversation.id, state.group or group) or 1
            text = str(self.config.texts["queued_reply"]).format(position=position)
            if announce:
                await self.speaker.say(conversation, "system", text, state=state)
            return text
        finally:
            if result.recording is not None:
                await result.recording

    # ------------------------------------------------------------------ triggers
    async def trigger(self, conversation: Any, text: str, state: OwnerState | None = None) -> str | None:
        """Why this citizen message hands off before the bot sees it: keyword, anger, flagged citizen.

        `state`: the live state the caller has just read (once the flagged-citizen check is made,
        it saves a round trip per message)."""
        if self.config.keywords.find(text):
            return "keyword"
        if self.config.anger_words.find(text):
            return "anger"
        if state is not None and state.flag_checked:
            return None
        # once per conversation: a citizen marked 重点关注 in the CRM, or carrying a flagged tag
        first = await self.redis.hsetnx(self.keys.conversation(conversation.id), "flag_checked", 1)
        if first:
            citizen = await self.citizens.get(conversation.citizen_id)
            if citizen and (
                getattr(citizen, "flagged", False) or self.config.flagged_tags.intersection(citizen.tags or [])
            ):
                return "flagged_citizen"
        return None

    async def citizen_merged(self, keep_id: int, merged_id: int, open_conversation_ids: list[str]) -> None:
        """After a CRM merge: live conversations and last-agent routing follow the surviving profile."""
        keys = [self.keys.conversation(conversation_id) for conversation_id in open_conversation_ids]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            live = [key for key, exists in zip(keys, await pipe.execute(), strict=True) if exists]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in live:
                pipe.hset(key, "citizen_id", keep_id)
                pipe.hdel(key, "view")  # the dispatcher's cached conversation view (flow/open_conversations.py)
            pipe.copy(self._k(f"handoff:last_agent:{merged_id}"), self._k(f"handoff:last_agent:{keep_id}"))
            await pipe.execute()

    # ------------------------------------------------------------------ assignment
    async def drain(self, group_name: str) -> int:
        """Assign waiting conversations of one group to eligible agents, front of the queue first.

        One drain per group at a time in this worker: a request arriving while one runs marks
        the group dirty and the running drain goes round again (so a burst of handoffs costs a
        few passes, not one pass each). Workers may drain the same group at once: the CAS
        decides every conversation exactly once."""
        group = self.config.group(group_name)
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
        lock = self._drain_locks.get(self.config.group(group_name).name)
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
        eligible = await self._eligible(group)
        free = sum(self.config.capacity - a["load"] for a in eligible)
        if free <= 0:
            return 0
        assigned = 0
        by_id = {a["agent_id"]: a for a in eligible}
        for conversation_id in await self.redis.zrange(self.keys.queue(group), 0, free - 1):
            if not by_id:
                break
            citizen = None
            if strategy == "last_agent":  # the only strategy that looks at who the citizen is
                citizen = await self.redis.hget(self.keys.conversation(conversation_id), "citizen_id")
            order = await self._order(group, list(by_id.values()), int(citizen) if citizen else None)
            for agent_id in order:
                result = await self.ownership.apply(
                    conversation_id,
                    "assign",
                    actor="system:auto",
                    agent_id=agent_id,
                    capacity=self.config.capacity,
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
                    if agent["load"] >= self.config.capacity:
                        by_id.pop(agent_id)
                    # the greeting and the statistics run beside the next assignments
                    followups.append(asyncio.create_task(self.after_assign(conversation_id, agent_id)))
                    break
                if result.reason == "wrong_state":
                    break  # another worker assigned it, or it left the queue
                by_id.pop(agent_id, None)  # full or no longer online: not this pass
        return assigned

    async def drain_for_agent(self, agent_id: int) -> None:
        found = await self.user(agent_id)
        if found is None:
            return
        username, _name, role = found
        for group in self.config.groups.values():
            if group.auto_assign and group.has_member(username, role):
                await self.drain(group.name)

    async def drain_all(self) -> None:
        for group in self.config.groups.values():
            if group.auto_assign:
                await self.drain(group.name)

    async def accept(self, conversation: Any, agent: Any) -> None:
        """Manual 接入 from the console (any agent, any group's queue)."""
        result = await self.ownership.apply(
            conversation.id, "assign", actor=f"agent:{agent.id}", agent_id=agent.id, capacity=self.config.capacity
        )
        if not result.ok:
            raise HandoffError("at_capacity" if result.reason == "at_capacity" else "taken")
        await self.after_assign(conversation.id, agent.id)

    async def after_assign(self, conversation_id: str, agent_id: int, *, waited: bool = True) -> None:
        """The citizen is greeted by name; last-agent routing, the CSAT's agents and (`waited`: it came
        from the queue) the group's average wait learn of it."""
        owner, serving, group = await self._served_by(conversation_id, agent_id, waited=waited)
        conversation = await self.conversations.fixed(conversation_id)  # only to say something in it
        if conversation is not None:
            name = await self.display_name(agent_id) or ""
            # the owner as read above (the greeting goes to whoever serves it now)
            state = OwnerState(Owner(owner or "bot"), int(serving) if serving else None, group or None)
            await self.speaker.say(
                conversation, "system", self.config.texts["assigned_reply"].format(agent=name), state=state
            )

    async def _served_by(self, conversation_id: str, agent_id: int, *, waited: bool = False) -> list[str]:
        """An agent now serves this conversation (`_SERVED_LUA`, one round trip); returns its owner,
        serving agent and group as they are now."""
        return await self._served_script(
            keys=[self.keys.conversation(conversation_id)],
            args=[
                self.keys.prefix, conversation_id, agent_id, CSAT_TTL, LAST_AGENT_TTL, "1" if waited else "",
                time.time(), EWMA,
            ],
        )

    async def _average(self, group: str, field: str, value: float) -> None:
        await self._ewma_script(keys=[self._k(f"handoff:stats:{group}")], args=[field, value, EWMA])

    # ------------------------------------------------------------------ waiting citizens
    async def eta_seconds(self, group: str, position: int) -> int:
        """The estimated wait: position × the group's recent average handle time ÷ its online slots."""
        handle = await self.redis.hget(self._k(f"handoff:stats:{group}"), "handle_avg")
        return await self._eta(group, position, handle)

    async def _eta(self, group: str, position: int, handle_avg: str | None) -> int:
        handle_seconds = float(handle_avg or self.config.default_handle_seconds)
        slots = max(1, await self._online_members(group) * self.config.capacity)
        return int(round(position * handle_seconds / slots / 5.0) * 5) or 5

    async def _online_members(self, group: str) -> int:
        """How many of a group's members are online (cached for a second: every waiting citizen's
        state frame asks, and a burst of transitions asks for each of them)."""
        cached = self._online_cache.get(group)
        now = time.monotonic()
        if cached and now - cached[0] < 1.0:
            return cached[1]
        cfg_group = self.config.group(group)
        count = sum(
            1 for a in await self.agents() if a["status"] == "online" and cfg_group.has_member(a["username"], a["role"])
        )
        self._online_cache[group] = (now, count)
        return count

    async def state_frame(self, conversation_id: str) -> dict[str, Any]:
        """The citizen's `state` frame: owner, queue position, estimated wait, group, agent's name."""
        return (await self.state_frames([conversation_id]))[conversation_id]

    async def state_frames(self, conversation_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The `state` frames of many conversations in one Redis round trip (plus a cached online
        count per group): the web channel refreshes every waiting citizen's position at once."""
        ids = list(dict.fromkeys(conversation_ids))
        if not ids:
            return {}
        rows = await self._states_script(
            keys=[self.keys.conversation(conversation_id) for conversation_id in ids], args=[self.keys.prefix, *ids]
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
                "agent_name": await self.display_name(int(agent)) if owner == Owner.AGENT and agent else None,
            }
        return frames

    async def queue_items(self) -> list[dict[str, Any]]:
        """The console's queue list: every waiting conversation, oldest first, with its channel,
        the citizen's name and their last line (one query for all of them)."""
        waiting = await self.ownership.waiting()
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
        async with self.sessions() as session:
            rows = await session.execute(
                select(Conversation.id, Conversation.channel, Citizen.name, last_line)
                .outerjoin(Citizen, Citizen.id == Conversation.citizen_id)
                .where(Conversation.id.in_([conversation_id for conversation_id, _group, _since in waiting]))
            )
            found = {conv_id: (channel, name, last) for conv_id, channel, name, last in rows}
        async with self.redis.pipeline(transaction=False) as pipe:
            for conversation_id, _group, _since in waiting:
                pipe.hmget(self.keys.conversation(conversation_id), "handoff_reason", "handoff_intent", "queued_at")
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
                    "reason": reason or None,  # why the citizen was handed off (flow.dispatch)
                    "intent": intent or None,
                }
            )
        return items

    async def offer_messages(self) -> None:
        """Offer 留言 to citizens who have waited longer than `offer_message_after_seconds` (once each)."""
        limit = time.time() - self.config.offer_message_after
        for group in await self.redis.smembers(self.keys.queues()):
            for conversation_id in await self.redis.zrange(self.keys.queue(group), 0, -1):
                key = self.keys.conversation(conversation_id)
                queued_at = await self.redis.hget(key, "queued_at")
                if not queued_at or float(queued_at) > limit:
                    continue
                if not await self.redis.hsetnx(key, "offered", 1):
                    continue
                conversation = await self.conversations.get(conversation_id)
                if conversation is not None:
                    await self.speaker.say(
                        conversation,
                        "system",
                        self.config.texts["offer_message_reply"],
                        meta={"offer_leave_message": True},
                    )

    async def leave_message(self, conversation: Any, text: str) -> dict[str, Any]:
        """A citizen's 留言 becomes a ticket (工单); a queued citizen leaves the queue for the bot."""
        if not isinstance(text, str) or not text.strip():
            raise HandoffError("empty")
        text = text.strip()
        if len(text) > MAX_TICKET:
            raise HandoffError("too_long")
        state = await self.ownership.state(conversation.id)
        group = state.group or await self.route(conversation.id)
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            ticket_id = await add_message_ticket(
                session,
                citizen_id=conversation.citizen_id,
                conversation_id=conversation.id,
                text=text,
                group=group,
                due_hours=self.config.ticket_due_hours,
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
            await self.ownership.apply(
                conversation.id,
                "cancel_queue",
                actor="citizen",
                data={"reason": "left_message", "ticket_id": ticket_id},
            )
        await self.speaker.say(
            conversation,
            "system",
            self.config.texts["ticket_reply"].format(ticket=ticket_id),
            meta={"ticket_id": ticket_id},
        )
        return {
            "ticket_id": ticket_id,
            "group": group,
            "due_at": (now + timedelta(hours=self.config.ticket_due_hours)).isoformat(),
        }

    # ------------------------------------------------------------------ the agent's actions
    async def _own(self, conversation_id: str, agent_id: int) -> None:
        state = await self.ownership.state(conversation_id)
        if state.owner != Owner.AGENT or state.agent_id != agent_id:
            raise HandoffError("not_yours")

    async def _handled(self, conversation_id: str) -> None:
        key = self.keys.conversation(conversation_id)
        assigned_at, group = await self.redis.hmget(key, "assigned_at", "group")
        if assigned_at and group:
            await self._average(group, "handle_avg", time.time() - float(assigned_at))

    async def return_to_bot(
        self, conversation: Any, agent_id: int, disposition: str = "resolved", summary: str = ""
    ) -> None:
        """The agent hands the citizen back to the bot, recording how the human part ended (as 结束会话 does)."""
        disposition, summary = self._check_wrap_up(disposition, summary)
        await self._own(conversation.id, agent_id)
        await self._handled(conversation.id)
        result = await self.ownership.apply(
            conversation.id,
            "return_to_bot",
            actor=f"agent:{agent_id}",
            expected_agent=agent_id,
            data={"previous_agent_id": agent_id, "disposition": disposition, "summary": summary},
        )
        if not result.ok:
            raise HandoffError("not_yours")
        await self.speaker.say(conversation, "system", self.config.texts["returned_reply"])
        await self.drain_for_agent(agent_id)

    @staticmethod
    def _check_wrap_up(disposition: str, summary: str) -> tuple[str, str]:
        """A disposition from DISPOSITIONS and a summary of at most MAX_SUMMARY characters."""
        disposition = disposition or "resolved"
        if disposition not in DISPOSITIONS:
            raise HandoffError("bad_disposition")
        summary = (summary or "").strip()
        if len(summary) > MAX_SUMMARY:
            raise HandoffError("too_long")
        return disposition, summary

    async def close(self, conversation: Any, agent_id: int, disposition: str = "resolved", summary: str = "") -> None:
        disposition, summary = self._check_wrap_up(disposition, summary)
        await self._own(conversation.id, agent_id)
        await self._handled(conversation.id)
        served = sorted(int(a) for a in await self.redis.smembers(self._k(f"handoff:served:{conversation.id}")))
        result = await self.ownership.apply(
            conversation.id,
            "close",
            actor=f"agent:{agent_id}",
            expected_agent=agent_id,
            data={"previous_agent_id": agent_id, "disposition": disposition, "summary": summary, "served_by": served},
        )
        if not result.ok:
            raise HandoffError("not_yours")
        await self.speaker.say(conversation, "system", self.config.texts["closed_reply"])
        await self.redis.set(self._k(f"handoff:csat:{conversation.id}"), agent_id, ex=CSAT_TTL)
        await self.speaker.say(
            conversation,
            "system",
            self.config.texts["csat_question"],
            meta={"csat": True, "conversation_id": conversation.id, "scale": [1, 2, 3, 4, 5]},
        )
        await self.drain_for_agent(agent_id)

    async def transfer(
        self, conversation: Any, agent_id: int, *, to_agent: Any = None, to_group: Any = None, memo: Any = ""
    ) -> dict[str, Any]:
        """Hand a conversation to a colleague (directly) or to a group's queue (at its front), with a memo."""
        memo = memo.strip() if isinstance(memo, str) else ""
        if len(memo) > MAX_MEMO:
            raise HandoffError("too_long")
        await self._own(conversation.id, agent_id)
        if to_agent not in (None, ""):
            target = await self._transfer_target(to_agent, agent_id)
            name, outcome = "transfer", {"to_agent_id": target}
            options: dict[str, Any] = {"agent_id": target, "capacity": self.config.capacity}
        elif isinstance(to_group, str) and to_group in self.config.groups:
            name, outcome, options = "transfer_to_group", {"to_group": to_group}, {"group": to_group}
        else:
            raise HandoffError("unknown_group")
        # the memo is on the conversation before the receiver's screen-pop reads it
        from_name = await self.display_name(agent_id) or ""
        await self.redis.hset(self.keys.conversation(conversation.id), mapping={"memo": memo, "memo_from": from_name})
        await self._handled(conversation.id)
        result = await self.ownership.apply(
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
            await self.speaker.say(
                conversation, "system", self.config.texts["transferred_reply"].format(target=f"{to_group}技能组")
            )
            await self.drain(str(to_group))
        await self.drain_for_agent(agent_id)
        return outcome

    async def _transfer_target(self, to_agent: Any, agent_id: int) -> int:
        """The colleague a conversation is transferred to (id or username): known, not oneself, reachable."""
        target = (
            int(to_agent)
            if isinstance(to_agent, int) or str(to_agent).isdigit()
            else await self.user_by_name(str(to_agent))
        )
        if target is None or await self.user(target) is None:
            raise HandoffError("unknown_agent")
        if target == agent_id:
            raise HandoffError("bad_field")
        if (await self.presence(target))["status"] not in ("online", "busy"):
            raise HandoffError("agent_unavailable")
        return target

    async def after_transfer_to_agent(self, conversation: Any, target: int) -> None:
        await self._served_by(conversation.id, target)
        name = await self.display_name(target) or ""
        await self.speaker.say(
            conversation, "system", self.config.texts["transferred_reply"].format(target=f"人工客服 {name}")
        )

    async def memo(self, conversation_id: str) -> dict[str, str] | None:
        return (await self.group_and_memo(conversation_id))[1]

    async def group_and_memo(self, conversation_id: str) -> tuple[str | None, dict[str, str] | None]:
        """A conversation's skill group and its transfer memo (the screen-pop's header), in one read."""
        key = self.keys.conversation(conversation_id)
        group, text, author = await self.redis.hmget(key, "group", "memo", "memo_from")
        return group or None, {"text": text, "from": author or ""} if text else None

    # ------------------------------------------------------------------ CSAT
    async def rate(
        self, conversation_id: Any, channel_user_id: str | None, score: Any, comment: Any = "", *, thank: bool = True
    ) -> dict[str, Any]:
        """A citizen's 满意度评价 for a conversation an agent closed (the latest rating wins).

        `thank=False`: the caller thanks the citizen where they are now (a typed rating, flow.rating_reply)."""
        if not isinstance(conversation_id, str) or not conversation_id:
            raise HandoffError("bad_field")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise HandoffError("bad_score")
        comment = comment.strip() if isinstance(comment, str) else ""
        if len(comment) > MAX_COMMENT:
            raise HandoffError("too_long")
        conversation = await self.conversations.get(conversation_id)
        if conversation is None or (channel_user_id is not None and conversation.channel_user_id != channel_user_id):
            raise HandoffError("not_found")
        closing_agent = await self.redis.get(self._k(f"handoff:csat:{conversation_id}"))
        if closing_agent is None:
            raise HandoffError("not_offered")
        served = sorted(await self.redis.smembers(self._k(f"handoff:served:{conversation_id}")))
        values = {
            "citizen_id": conversation.citizen_id,
            "agent_id": int(closing_agent),
            "agent_ids": served,
            "score": score,
            "comment": comment,
            "created_at": datetime.now(UTC),
        }
        for _ in range(2):
            try:
                async with self.sessions() as session, session.begin():
                    row = (
                        await session.execute(select(CsatRating).where(CsatRating.conversation_id == conversation_id))
                    ).scalar_one_or_none()
                    if row is None:
                        session.add(CsatRating(conversation_id=conversation_id, **values))
                    else:
                        for name, value in values.items():
                            setattr(row, name, value)
                    session.add(
                        ConversationEvent(
                            conversation_id=conversation_id,
                            kind="csat",
                            actor="citizen",
                            data={"score": score, "comment": comment},
                        )
                    )
                break
            except IntegrityError:
                continue  # a second tab rated at the same moment: update theirs
        if thank:
            meta = {"csat_done": True, "score": score}
            await self.speaker.say(conversation, "system", self.config.texts["csat_thanks"], meta=meta)
        return {"conversation_id": conversation_id, "score": score}

    # ------------------------------------------------------------------ the sweeper
    async def run(self) -> None:
        """Each worker: refresh the heartbeat of the agents whose sockets it holds, then (one worker
        per interval, under a Redis lock) mark silent agents offline and requeue their
        conversations, offer 留言 to long waiters, and assign what can be assigned."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handoff sweeper failed")
            await asyncio.sleep(self.config.sweep_interval)

    async def tick(self) -> None:
        await self.heartbeats(list(self.local_agents()))
        lock_ms = max(100, int(self.config.sweep_interval * 900))
        if not await self.redis.set(self._k("handoff:sweeper"), self._worker, nx=True, px=lock_ms):
            return
        await self.sweep()

    async def sweep(self) -> None:
        cutoff = time.time() - self.config.heartbeat_timeout
        agent_ids = [int(raw) for raw in await self.redis.smembers(self._k("handoff:agents"))]
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            await self._mark_offline(keys=[self.presence_key(agent_id)], args=[cutoff], client=pipe)
        outcomes = await pipe.execute() if agent_ids else []
        for agent_id, changed in zip(agent_ids, outcomes, strict=True):
            if changed == 1:
                await self.bus.publish(PresenceEvent(agent_id, "offline"))
            if changed in (1, 2):
                await self.requeue_agent(agent_id)
        await self.offer_messages()
        await self.drain_all()

    async def requeue_agent(self, agent_id: int) -> int:
        """An agent went offline: their conversations go back to the FRONT of their queues."""
        moved = 0
        for conversation_id in sorted(await self.ownership.agent_conversations(agent_id)):
            result = await self.ownership.apply(
                conversation_id,
                "requeue",
                actor="system:presence",
                expected_agent=agent_id,
                data={"reason": "agent_offline", "previous_agent_id": agent_id},
            )
            if not result.ok:
                continue
            moved += 1
            conversation = await self.conversations.get(conversation_id)
            if conversation is not None:
                await self.speaker.say(conversation, "system", self.config.texts["agent_offline_reply"])
            if result.state and result.state.group:
                await self.drain(result.state.group)
        return moved

    # ------------------------------------------------------------------ supervisors
    async def board(self) -> dict[str, Any]:
        """What a supervisor's board shows: every queue with its waits and its waiting conversations
        (in queue order, to watch or take over), every agent's state and load. Redis only, a few
        round trips."""
        now = time.time()
        groups = sorted(set(self.config.groups) | set(await self.redis.smembers(self.keys.queues())))
        pipe = self.redis.pipeline(transaction=False)
        for group in groups:
            pipe.zrange(self.keys.queue(group), 0, -1)
            pipe.hgetall(self._k(f"handoff:stats:{group}"))
        raw = await pipe.execute()
        queued = [(group, conversation_id) for index, group in enumerate(groups) for conversation_id in raw[2 * index]]
        pipe = self.redis.pipeline(transaction=False)
        for _group, conversation_id in queued:
            pipe.hget(self.keys.conversation(conversation_id), "queued_at")
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
        agents = await self.agents()
        pipe = self.redis.pipeline(transaction=False)
        for agent in agents:
            pipe.smembers(self.keys.agent_conversations(agent["agent_id"]))
        for agent, conversations in zip(agents, await pipe.execute() if agents else [], strict=True):
            agent["conversations"] = sorted(conversations)
        # citizen, channel and last line of every listed conversation (handoff.board_details: one query)
        listed = [w["conversation_id"] for w in waiting] + [c for a in agents for c in a["conversations"]]
        details = await describe(self.sessions, listed)
        return {
            "type": "board", "at": now, "queues": queues, "waiting": waiting, "agents": agents, "details": details,
        }

    def _watch_key(self, supervisor_id: int) -> str:
        return self._k(f"handoff:watch:{supervisor_id}")

    async def watch(self, supervisor_id: int, conversation_id: str, on: bool = True) -> None:
        """Start (or stop) a supervisor's watch of a conversation. Kept in Redis, so that the
        supervisor's page reconnecting to another worker keeps watching; every worker holding
        one of their sockets learns of it from the `watch` event."""
        key = self._watch_key(supervisor_id)
        if on:
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(key, conversation_id)
            pipe.expire(key, WATCH_TTL)
            await pipe.execute()
        else:
            await self.redis.srem(key, conversation_id)
        await self.bus.publish(WatchEvent(supervisor_id, conversation_id, on))

    async def watched(self, supervisor_id: int) -> list[str]:
        """What a supervisor watches (conversations since closed are dropped from the list)."""
        key = self._watch_key(supervisor_id)
        watched = sorted(await self.redis.smembers(key))
        if not watched:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for conversation_id in watched:
            pipe.hget(self.keys.conversation(conversation_id), "owner")
        owners = await pipe.execute()
        closed = [c for c, owner in zip(watched, owners, strict=True) if owner is None]
        if closed:
            await self.redis.srem(key, *closed)
        return [c for c in watched if c not in closed]

    async def whisper(self, conversation: Any, supervisor: Any, text: Any) -> Any:
        """A supervisor's note to the serving agent: kept in the transcript with meta whisper=true,
        published as a `whisper` event (never `message`), so no channel ever delivers it."""
        if not isinstance(text, str) or not text.strip():
            raise HandoffError("empty")
        if len(text) > MAX_MEMO:
            raise HandoffError("too_long")
        state = await self.ownership.state(conversation.id)
        if state.owner != Owner.AGENT:
            raise HandoffError("taken")
        message, _ = await self.conversations.record(
            conversation.id,
            conversation.channel,
            "system",
            text.strip(),
            sender_name=supervisor.display_name,
            meta={"whisper": True, "from_user_id": supervisor.id},
        )
        await self.bus.publish(WhisperEvent(conversation.id, state.agent_id, message.to_json()))
        return message

    async def take_over(self, conversation: Any, supervisor: Any) -> dict[str, Any]:
        """A supervisor takes a waiting or served conversation onto their own console.

        A deliberate act (an escalation, a struggling colleague, a citizen waiting too long): it is
        NOT held back by the supervisor's capacity or presence. The board shows the supervisor's
        load against the capacity and the page asks for a confirmation, so the choice is seen.
        Returns the supervisor's load after it and whether that is beyond the capacity."""
        state = await self.ownership.state(conversation.id)
        if state.owner == Owner.AGENT and state.agent_id == supervisor.id:
            raise HandoffError("bad_field")
        if state.owner not in (Owner.AGENT, Owner.QUEUED):
            raise HandoffError("taken")
        served = state.owner == Owner.AGENT
        result = await self.ownership.apply(
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
        self._users[supervisor.id] = (supervisor.username, supervisor.display_name, supervisor.role)
        await self.after_assign(conversation.id, supervisor.id, waited=not served)
        if state.agent_id is not None:
            await self.drain_for_agent(state.agent_id)
        load = len(await self.ownership.agent_conversations(supervisor.id))
        return {"load": load, "capacity": self.config.capacity, "over_capacity": load > self.config.capacity}

    async def conversation_record(self, conversation_id: str) -> Conversation | None:
        async with self.sessions() as session:
            return await session.get(Conversation, conversation_id)


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, default=str)

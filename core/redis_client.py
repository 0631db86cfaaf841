"""One Redis client per process, and the key names every package uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
from redis.driver_info import DriverInfo


def make_redis(url: str) -> aioredis.Redis:
    # a blocking pool: a burst of requests waits for a connection instead of failing with
    # "Too many connections" (redis-py's default pool refuses past 100). The driver info is
    # given: redis-py otherwise reads its own package metadata for every new connection (~0.3 ms)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, health_check_interval=30, max_connections=256, timeout=20,
        driver_info=DriverInfo(lib_version=redis.__version__),
    )
    return aioredis.Redis(connection_pool=pool)


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix, so that several deployments (or test runs) share a server."""

    prefix: str

    def conversation(self, conversation_id: str) -> str:
        return f"{self.prefix}conv:{conversation_id}"

    def queue(self, group: str) -> str:
        return f"{self.prefix}queue:{group}"

    def queues(self) -> str:
        return f"{self.prefix}queues"

    def agent_conversations(self, agent_id: int | str) -> str:
        return f"{self.prefix}agent:{agent_id}:convs"

    def session(self, token: str) -> str:
        return f"{self.prefix}session:{token}"

    def events_channel(self) -> str:
        return f"{self.prefix}events"

    def kb_version(self) -> str:
        return f"{self.prefix}kb:version"

    def open_conversation(self, channel: str, channel_user_id: str) -> str:
        """The cached open conversation of a citizen on a channel (flow.open_conversations)."""
        return f"{self.prefix}openconv:{channel}:{channel_user_id}"

    # -- handoff (handoff/*) -------------------------------------------------------------------

    def presence(self, agent_id: int | str) -> str:
        """hash: status, last_seen, username, display_name, role, last_assigned."""
        return f"{self.prefix}presence:{agent_id}"

    def agents(self) -> str:
        """set of agent ids that ever connected (the sweeper's list)."""
        return f"{self.prefix}handoff:agents"

    def group_stats(self, group: str) -> str:
        """hash: wait_avg, handle_avg (a skill group's moving averages, seconds)."""
        return f"{self.prefix}handoff:stats:{group}"

    def last_agent(self, citizen_id: int | str) -> str:
        """the agent who last served a citizen (last-agent-first routing)."""
        return f"{self.prefix}handoff:last_agent:{citizen_id}"

    def served(self, conversation_id: str) -> str:
        """set of agents who served a conversation (its CSAT survives transfers)."""
        return f"{self.prefix}handoff:served:{conversation_id}"

    def csat(self, conversation_id: str) -> str:
        """the agent a CSAT question was sent for (a rating is accepted while it lives)."""
        return f"{self.prefix}handoff:csat:{conversation_id}"

    def handoff_sweeper(self) -> str:
        """the handoff sweeper's lock (one worker sweeps per interval)."""
        return f"{self.prefix}handoff:sweeper"

    def watching(self, supervisor_id: int | str) -> str:
        """set of conversations a supervisor watches."""
        return f"{self.prefix}handoff:watch:{supervisor_id}"

    # -- answering a stored message (flow/recovery.py) ----------------------------------------

    def answering(self, message_id: int | str) -> str:
        """a stored message's answer lease: the id of the worker answering it, or `done`."""
        return f"{self.prefix}answering:{message_id}"

    def answering_set(self) -> str:
        """sorted set of the leases, scored by when they were taken."""
        return f"{self.prefix}answering"

    def answering_sweeper(self) -> str:
        return f"{self.prefix}answering:sweeper"

    def worker(self, worker_id: str) -> str:
        """a live worker's heartbeat."""
        return f"{self.prefix}worker:{worker_id}"

    # -- channels ------------------------------------------------------------------------------

    def wechat_token(self, app_id: str) -> str:
        return f"{self.prefix}wechat:token:{app_id}"

    def wechat_token_lock(self, app_id: str) -> str:
        return f"{self.prefix}wechat:token-lock:{app_id}"

    def wechat_push(self, dedupe_id: str) -> str:
        """a WeChat push claimed by a worker (pending / its reply)."""
        return f"{self.prefix}wechat:push:{dedupe_id}"

    def wechat_profile(self, openid: str) -> str:
        """set while a citizen's WeChat profile was fetched recently."""
        return f"{self.prefix}wechat:profile:{openid}"

    def web_uploads(self, visitor_id: str) -> str:
        """a web visitor's recent uploads (core.rate_limit)."""
        return f"{self.prefix}web:uploads:{visitor_id}"

    # -- for Lua scripts -----------------------------------------------------------------------

    def around(self, key_of: Callable[[str], str]) -> tuple[str, str]:
        """The text before and after the variable part of a kind of key, e.g. `around(keys.queue)`:
        a Lua script that reads ids (a group, an agent) builds their keys as `head .. id .. tail`,
        from ARGV, so that every key name still comes from here."""
        head, tail = key_of("\x00").split("\x00")
        return head, tail

    def csat_prompt(self, channel: str, channel_user_id: str) -> str:
        """The conversation whose 满意度评价 prompt is the last thing said to this citizen (flow.rating_reply)."""
        return f"{self.prefix}csat:prompt:{channel}:{channel_user_id}"

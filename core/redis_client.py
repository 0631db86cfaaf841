"""One Redis client per process, and the key names every package uses."""

from __future__ import annotations

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

    def agent_conversations(self, agent_id: int) -> str:
        return f"{self.prefix}agent:{agent_id}:convs"

    def session(self, token: str) -> str:
        return f"{self.prefix}session:{token}"

    def events_channel(self) -> str:
        return f"{self.prefix}events"

    def kb_version(self) -> str:
        return f"{self.prefix}kb:version"

    def csat_prompt(self, channel: str, channel_user_id: str) -> str:
        """The conversation whose 满意度评价 prompt is the last thing said to this citizen (flow.rating_reply)."""
        return f"{self.prefix}csat:prompt:{channel}:{channel_user_id}"

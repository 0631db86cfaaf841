"""Stored but unanswered: a citizen message committed by a worker that died before answering.

Between the commit and the answer, a message holds a lease in Redis
(`<prefix>answering:<message id>` = the worker's id, and a member of the sorted set
`<prefix>answering` scored by the time it was taken). Each worker keeps a heartbeat key alive
while it runs. A lease whose worker has no heartbeat belongs to a dead worker and is taken
over, exactly once (a compare-and-set script), either by the platform's retry of that
message (WeChat resends after 5 s; the dedupe sends it here) or by the sweeper that one
worker at a time runs under a Redis lock. A finished message's lease says `done` for a while,
so a late retry never asks twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import cast

import redis.asyncio as aioredis

from core.redis_client import Keys

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
# a worker silent this long is dead: generous, so that a worker that is only overloaded (its
# event loop late) is not taken for dead and a message answered twice; every message it
# stores refreshes it too
HEARTBEAT_TTL = 10
LEASE_TTL = 600  # also how long `done` stops a late retry
TAKE_OVER_WINDOW = 300.0  # an unknown message older than this is not re-asked
SWEEP_SECONDS = 2.0
SWEEP_BATCH = 50

# KEYS: the lease, the set of leases; ARGV: 1 my worker id, 2-3 a worker's heartbeat key around
# its id (Keys.around), 4 member, 5 now, 6 lease ttl, 7 '1' = a missing lease may be taken (the message is recent)
# Returns 1 taken over, 0 its worker is alive, -1 done (or too old to know)
_TAKE_OVER_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == 'done' then redis.call('ZREM', KEYS[2], ARGV[4]) return -1 end
if holder then
  if holder == ARGV[1] or redis.call('EXISTS', ARGV[2] .. holder .. ARGV[3]) == 1 then return 0 end
elseif ARGV[7] ~= '1' then
  redis.call('ZREM', KEYS[2], ARGV[4])
  return -1
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[6]))
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
return 1
"""

Reanswer = Callable[[int], Awaitable[None]]


class AnswerLeases:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self.worker_id = uuid.uuid4().hex[:12]
        self._take_over = redis.register_script(_TAKE_OVER_LUA)
        self._tasks: list[asyncio.Task[None]] = []
        self._reanswering: set[asyncio.Task[None]] = set()

    def _lease(self, message_id: int) -> str:
        return self._keys.answering(message_id)

    @property
    def _set(self) -> str:
        return self._keys.answering_set()

    @property
    def _heartbeat_key(self) -> str:
        return self._keys.worker(self.worker_id)

    async def begin(self, message_id: int, read_hash: str | None = None) -> dict[str, str]:
        """Right after the commit, before the acknowledgement: this worker is answering it.

        `read_hash`: a hash to read in the same round trip (the dispatcher's conversation state);
        returns it ({} without one)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._heartbeat_key, 1, ex=HEARTBEAT_TTL)
            pipe.set(self._lease(message_id), self.worker_id, ex=LEASE_TTL)
            pipe.zadd(self._set, {str(message_id): time.time()})
            if read_hash is not None:
                pipe.hgetall(read_hash)
            results = await pipe.execute()
        return results[3] if read_hash is not None else {}

    async def done(self, message_id: int) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._lease(message_id), "done", ex=LEASE_TTL)
            pipe.zrem(self._set, str(message_id))
            await pipe.execute()

    async def take_over(self, message_id: int, created_at: datetime | None) -> bool:
        """True when the message was stored but its answer is owed and nobody alive is on it."""
        age = (datetime.now(UTC) - created_at).total_seconds() if created_at else 0.0
        taken = await self._take_over(
            keys=[self._lease(message_id), self._set],
            args=[self.worker_id, *self._keys.around(self._keys.worker), str(message_id), time.time(), LEASE_TTL,
                  "1" if age <= TAKE_OVER_WINDOW else ""],
        )
        return int(taken) == 1

    # -- background: the heartbeat and the sweeper -------------------------------------------

    def start(self, reanswer: Reanswer, created_at: Callable[[int], Awaitable[datetime | None]]) -> None:
        """Start this worker's heartbeat and sweeper (idempotent; in the running loop)."""
        if any(not task.done() for task in self._tasks):
            return
        self._tasks = [
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._sweeper(reanswer, created_at)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self._redis.set(self._heartbeat_key, 1, ex=HEARTBEAT_TTL)
            except Exception:
                log.warning("worker heartbeat failed", exc_info=True)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _sweeper(self, reanswer: Reanswer, created_at: Callable[[int], Awaitable[datetime | None]]) -> None:
        lock = self._keys.answering_sweeper()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                if not await self._redis.set(lock, self.worker_id, nx=True, ex=int(SWEEP_SECONDS * 2)):
                    continue
                stale = await self._redis.zrangebyscore(
                    self._set, "-inf", time.time() - HEARTBEAT_TTL, start=0, num=SWEEP_BATCH
                )
                for member in stale:
                    message_id = int(cast(str, member))  # the client decodes responses
                    if await self.take_over(message_id, await created_at(message_id)):
                        log.warning("answering message %s that a stopped worker had stored", message_id)
                        task = asyncio.create_task(self._reanswer(reanswer, message_id))
                        self._reanswering.add(task)
                        task.add_done_callback(self._reanswering.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the unanswered-message sweeper failed")

    async def _reanswer(self, reanswer: Reanswer, message_id: int) -> None:
        try:
            await reanswer(message_id)
        except Exception:
            log.exception("could not answer message %s again", message_id)

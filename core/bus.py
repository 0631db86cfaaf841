"""Fan-out of live events to every hub worker over Redis pub/sub.

Each worker holds some WebSockets; an event published by any worker reaches the one that
holds the socket. Nothing here is the record of anything: the database is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from core.events import Event, decode, encode

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 2.0

EventHandler = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._handlers: list[EventHandler] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    async def publish(self, event: Event) -> None:
        """Send one event to every worker (this one included): core.events says what it carries."""
        await self._redis.publish(self._channel, encode(event))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._ready.set()
                async for raw in pubsub.listen():
                    if raw.get("type") != "message":
                        continue
                    event = decode(raw["data"])
                    if event is None:
                        continue  # a kind only a newer worker knows
                    for handler in self._handlers:
                        try:
                            await handler(event)
                        except Exception:  # one bad socket must not stop the others
                            log.exception("event handler failed for %s", event.kind)
            except asyncio.CancelledError:
                await _close(pubsub)
                raise
            except Exception:
                log.exception("event bus connection lost; resubscribing")
                await _close(pubsub)
                await asyncio.sleep(0.5)


async def _close(pubsub: Any) -> None:
    """Close a subscription without ever hanging a worker's shutdown.

    redis-py's `PubSub.aclose()` can wait forever on the socket's `wait_closed()`
    (redis/redis-py#3941): bounded here, then the connection is dropped without waiting."""
    try:
        await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT_SECONDS)
    except Exception:
        connection = getattr(pubsub, "connection", None)
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)

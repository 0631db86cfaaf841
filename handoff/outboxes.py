"""This worker's agent console sockets, and one ordered outbox per agent.

Frames for an agent leave in the order they were posted; an item may be a coroutine function
that makes its frame (a screen-pop reads the database) without holding up other agents'."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Item = str | Callable[[], Awaitable[str | None]]


class AgentOutboxes:
    def __init__(self) -> None:
        self.sockets: dict[int, set[Any]] = defaultdict(set)
        self._outboxes: dict[int, asyncio.Queue[Item]] = {}
        self._pumps: dict[int, asyncio.Task[None]] = {}

    def add(self, agent_id: int, ws: Any) -> None:
        self.sockets[agent_id].add(ws)

    def remove(self, agent_id: int, ws: Any) -> bool:
        """Forget a closed socket; True when it was the agent's last one here (their outbox goes too)."""
        self.sockets[agent_id].discard(ws)
        if self.sockets[agent_id]:
            return False
        self.sockets.pop(agent_id, None)
        self._outboxes.pop(agent_id, None)
        pump = self._pumps.pop(agent_id, None)
        if pump is not None:
            pump.cancel()
        return True

    def post(self, agent_id: int, item: Item) -> None:
        """Queue a frame (or a coroutine making one, or sending its own) for an agent; frames leave in order."""
        if agent_id not in self.sockets:
            return
        outbox = self._outboxes.get(agent_id)
        if outbox is None:
            outbox = self._outboxes[agent_id] = asyncio.Queue()
            self._pumps[agent_id] = asyncio.create_task(self._pump(agent_id, outbox))
        outbox.put_nowait(item)

    async def _pump(self, agent_id: int, outbox: asyncio.Queue[Item]) -> None:
        while True:
            item = await outbox.get()
            try:
                frame = item if isinstance(item, str) else await item()
                if frame is not None:
                    await self.send(agent_id, frame)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not send a frame to agent %s", agent_id)

    async def send(self, agent_id: int, frame: str) -> None:
        """Send a ready frame to every socket of an agent now (a broken socket is dropped)."""
        for socket in list(self.sockets.get(agent_id, ())):
            try:
                await socket.send(frame)
            except Exception:
                self.sockets[agent_id].discard(socket)

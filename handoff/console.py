"""The agent console's live side: one WebSocket per agent tab.

Agents accept waiting conversations (exactly one wins) or get them assigned automatically,
reply, transfer (to a colleague or a group, with a memo), return to the bot and close
(with a disposition and a summary). The queue list is pushed to every agent on every
change (coalesced). Each socket is a presence heartbeat; agents set online/busy/away.
Supervisors also get the board (queues, waits, agents' states and loads).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from handoff.conversations import ConversationStore
from handoff.service import HandoffError
from handoff.state import Owner, Ownership

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 2000
ERRORS = {
    "bad_json": "消息格式错误。",
    "bad_field": "请求内容不完整。",
    "taken": "该会话已被其他坐席接入或已结束。",
    "at_capacity": "您当前接待的会话已达上限，请先结束部分会话。",
    "not_yours": "该会话不在您的接待列表中。",
    "empty": "不能发送空消息。",
    "too_long": f"消息太长了（不超过 {MAX_REPLY_CHARS} 字）。",
    "unknown_type": "不支持的操作。",
    "forbidden": "您没有此操作的权限。",
}

ScreenPop = Callable[[str, Any], Awaitable[dict[str, Any]]]


class ConsoleError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class AgentConsole:
    def __init__(
        self,
        hub: Any,  # the Dispatcher: say(), conversations, settings
        ownership: Ownership,
        conversations: ConversationStore,
        screen_pop: ScreenPop,
        queue_items: Callable[[], Awaitable[list[dict[str, Any]]]],
        capacity: int,
    ) -> None:
        self._hub = hub
        self._ownership = ownership
        self._conversations = conversations
        self._screen_pop = screen_pop
        self._queue_items = queue_items
        self._capacity = capacity
        self._sockets: dict[int, set[Any]] = defaultdict(set)
        self._supervisors: set[int] = set()
        self._handoff = hub.handoff
        self._handoff.local_agents = lambda: list(self._sockets)
        self._queue_dirty = False
        self._queue_task: asyncio.Task[None] | None = None
        self._board_dirty = False
        self._outboxes: dict[int, asyncio.Queue[Any]] = {}
        self._watching: dict[str, set[int]] = defaultdict(set)  # conversation → supervisors on this worker
        self._pumps: dict[int, asyncio.Task[None]] = {}
        self._board_task: asyncio.Task[None] | None = None

    def _queue_changed(self) -> None:
        """Coalesce queue pushes: a burst of transitions sends one fresh list, not one per event."""
        self._queue_dirty = True
        if self._queue_task is None or self._queue_task.done():
            self._queue_task = asyncio.create_task(self._push_queue())

    async def _push_queue(self) -> None:
        while self._queue_dirty:
            self._queue_dirty = False
            await asyncio.sleep(0.05)
            if not self._sockets:
                continue
            try:
                frame = json.dumps({"type": "queue", "items": await self._queue_items()}, ensure_ascii=False)
            except Exception:
                log.exception("could not build the queue list")
                continue
            for agent_id in list(self._sockets):
                await self._send_to(agent_id, frame)

    def _board_changed(self) -> None:
        if not self._supervisors:
            return
        self._board_dirty = True
        if self._board_task is None or self._board_task.done():
            self._board_task = asyncio.create_task(self._push_board())

    async def _push_board(self) -> None:
        while self._board_dirty:
            self._board_dirty = False
            await asyncio.sleep(0.2)
            try:
                frame = json.dumps(await self._handoff.board(), ensure_ascii=False, default=str)
            except Exception:
                log.exception("could not build the supervisor board")
                continue
            for agent_id in list(self._supervisors):
                await self._send_to(agent_id, frame)

    async def on_event(self, event: dict[str, Any]) -> None:
        """Called by the bus listener for every event: only cheap work here; anything that reads
        the database (the screen-pop) goes through the agent's ordered outbox."""
        if not self._sockets:
            return
        kind = event.get("kind")
        if kind in ("message", "whisper") and event.get("conversation_id") in self._watching:
            frame = json.dumps({"type": "message", "message": event["message"], "watching": True}, ensure_ascii=False)
            for supervisor in self._watching[event["conversation_id"]] - {event.get("agent_id")}:
                self._post(supervisor, frame)
        if kind == "message" and event.get("agent_id") is not None:
            frame = json.dumps({"type": "message", "message": event["message"]}, ensure_ascii=False)
            self._post(int(event["agent_id"]), frame)
        elif kind == "state":
            self._queue_changed()
            self._board_changed()
            data = event.get("data") or {}
            previous_agent = data.get("previous_agent_id")
            if (
                event.get("previous") == "agent"
                and previous_agent is not None
                and previous_agent != event.get("agent_id")
            ):
                closed = json.dumps(
                    {
                        "type": "closed",
                        "conversation_id": event["conversation_id"],
                        "transition": event.get("transition"),
                        "take_over": bool(data.get("take_over")),
                    }
                )
                self._post(int(previous_agent), closed)
            agent_id = event.get("agent_id")
            if event.get("owner") == "agent" and agent_id is not None and int(agent_id) in self._sockets:
                # the screen-pop, on whichever worker holds the agent's socket (manual, auto, transfer)
                self._post(int(agent_id), functools.partial(self._assigned_for, int(agent_id), event))
        elif kind == "whisper" and event.get("agent_id") is not None:
            frame = json.dumps({"type": "message", "message": event["message"]}, ensure_ascii=False)
            self._post(int(event["agent_id"]), frame)
        elif kind == "presence":
            agent_id = int(event["agent_id"])
            if agent_id in self._sockets:
                self._post(agent_id, json.dumps({"type": "presence", "status": event["status"]}))
            self._board_changed()

    async def _assigned_for(self, agent_id: int, event: dict[str, Any]) -> str:
        found = await self._handoff.user(agent_id)
        user = _Viewer(agent_id, found[2] if found else "agent")
        assigned = await self._assigned_frame(event["conversation_id"], user)
        assigned["transition"] = event.get("transition")
        assigned["auto"] = bool((event.get("data") or {}).get("auto"))
        return json.dumps(assigned, ensure_ascii=False, default=str)

    def _post(self, agent_id: int, item: str | Callable[[], Awaitable[str]]) -> None:
        """Queue a frame (or a coroutine making one) for an agent; frames leave in order."""
        if agent_id not in self._sockets:
            return
        outbox = self._outboxes.get(agent_id)
        if outbox is None:
            outbox = self._outboxes[agent_id] = asyncio.Queue()
            self._pumps[agent_id] = asyncio.create_task(self._pump(agent_id, outbox))
        outbox.put_nowait(item)

    async def _pump(self, agent_id: int, outbox: asyncio.Queue[Any]) -> None:
        while True:
            item = await outbox.get()
            try:
                frame = item if isinstance(item, str) else await item()
                await self._send_to(agent_id, frame)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not send a frame to agent %s", agent_id)

    async def _send_to(self, agent_id: int, frame: str) -> None:
        for socket in list(self._sockets.get(agent_id, ())):
            try:
                await socket.send(frame)
            except Exception:
                self._sockets[agent_id].discard(socket)

    async def serve(self, ws: Any, user: Any) -> None:
        self._sockets[user.id].add(ws)
        if user.role == "supervisor":
            self._supervisors.add(user.id)
        try:
            status = await self._handoff.connect(user)
            await ws.send(json.dumps({"type": "presence", "status": status}))
            await ws.send(json.dumps({"type": "queue", "items": await self._queue_items()}, ensure_ascii=False))
            for conversation_id in sorted(await self._ownership.agent_conversations(user.id)):
                await ws.send(
                    json.dumps(await self._assigned_frame(conversation_id, user), ensure_ascii=False, default=str)
                )
            if user.role == "supervisor":
                await ws.send(json.dumps(await self._handoff.board(), ensure_ascii=False, default=str))
            async for raw in ws:
                try:
                    await self._handle(ws, user, raw)
                except ConsoleError as error:
                    await ws.send(
                        json.dumps(
                            {"type": "error", "code": error.code, "reason": ERRORS[error.code]}, ensure_ascii=False
                        )
                    )
                except HandoffError as error:
                    await ws.send(
                        json.dumps({"type": "error", "code": error.code, "reason": error.reason}, ensure_ascii=False)
                    )
        finally:
            self._sockets[user.id].discard(ws)
            if not self._sockets[user.id]:
                self._sockets.pop(user.id, None)
                self._supervisors.discard(user.id)
                self._unwatch(user.id)
                self._outboxes.pop(user.id, None)
                pump = self._pumps.pop(user.id, None)
                if pump is not None:
                    pump.cancel()

    async def _handle(self, ws: Any, user: Any, raw: str | bytes) -> None:
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise ConsoleError("bad_json") from error
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ConsoleError("bad_field")
        kind = data["type"]
        await self._handoff.heartbeat(user.id)
        if kind == "ping":
            await ws.send(json.dumps({"type": "pong", "at": time.time()}))
            return
        if kind == "presence":
            status = data.get("status")
            await self._handoff.set_presence(user.id, status if isinstance(status, str) else "")
            return
        if kind == "agents":  # who can take a transfer
            items = [
                {k: a[k] for k in ("agent_id", "username", "display_name", "status", "load", "capacity")}
                for a in await self._handoff.agents()
                if a["role"] == "agent" and a["agent_id"] != user.id
            ]
            await ws.send(
                json.dumps(
                    {"type": "agents", "items": items, "groups": sorted(self._handoff.config.groups)},
                    ensure_ascii=False,
                )
            )
            return
        if kind == "board":
            if user.role != "supervisor":
                raise ConsoleError("forbidden")
            await ws.send(json.dumps(await self._handoff.board(), ensure_ascii=False, default=str))
            return
        conversation_id = data.get("conversation_id")
        if not isinstance(conversation_id, str):
            raise ConsoleError("bad_field")
        conversation = await self._conversations.get(conversation_id)
        if conversation is None:
            raise ConsoleError("taken")
        if kind in ("watch", "unwatch", "whisper", "take_over") and user.role != "supervisor":
            raise ConsoleError("forbidden")
        if kind == "watch":
            self._watching[conversation.id].add(user.id)
            frame = await self._assigned_frame(conversation.id, user)
            frame["type"] = "watching"
            await ws.send(json.dumps(frame, ensure_ascii=False, default=str))
        elif kind == "unwatch":
            self._unwatch(user.id, conversation.id)
        elif kind == "whisper":
            await self._handoff.whisper(conversation, user, data.get("text"))
        elif kind == "take_over":
            await self._handoff.take_over(conversation, user)
        elif kind == "accept":
            await self._handoff.accept(conversation, user)
        elif kind == "reply":
            await self._reply(ws, user, conversation, data)
        elif kind == "close":
            disposition, summary = data.get("disposition") or "resolved", data.get("summary") or ""
            if not isinstance(disposition, str) or not isinstance(summary, str):
                raise ConsoleError("bad_field")
            await self._handoff.close(conversation, user.id, disposition, summary)
        elif kind == "return_to_bot":
            await self._handoff.return_to_bot(conversation, user.id)
        elif kind == "transfer":
            result = await self._handoff.transfer(
                conversation,
                user.id,
                to_agent=data.get("to_agent"),
                to_group=data.get("to_group"),
                memo=data.get("memo", ""),
            )
            await ws.send(
                json.dumps({"type": "transferred", "conversation_id": conversation.id, **result}, ensure_ascii=False)
            )
        else:
            raise ConsoleError("unknown_type")

    def _unwatch(self, user_id: int, conversation_id: str | None = None) -> None:
        for conv in [conversation_id] if conversation_id else list(self._watching):
            watchers = self._watching.get(conv)
            if watchers is not None:
                watchers.discard(user_id)
                if not watchers:
                    self._watching.pop(conv, None)

    async def _assigned_frame(self, conversation_id: str, user: Any) -> dict[str, Any]:
        transcript = await self._conversations.transcript(conversation_id)
        state = await self._ownership.state(conversation_id)
        return {
            "type": "assigned",
            "conversation_id": conversation_id,
            "group": state.group,
            "memo": await self._handoff.memo(conversation_id),
            "transcript": [message.to_json() for message in transcript],
            "screen_pop": await self._screen_pop(conversation_id, user),
        }

    async def _owned(self, user: Any, conversation_id: str) -> None:
        state = await self._ownership.state(conversation_id)
        if state.owner != Owner.AGENT or state.agent_id != user.id:
            raise ConsoleError("not_yours")

    async def _reply(self, ws: Any, user: Any, conversation: Any, data: dict[str, Any]) -> None:
        text = data.get("text")
        if not isinstance(text, str):
            raise ConsoleError("bad_field")
        if not text.strip():
            raise ConsoleError("empty")
        if len(text) > MAX_REPLY_CHARS:
            raise ConsoleError("too_long")
        await self._owned(user, conversation.id)
        message = await self._hub.say(conversation, "agent", text.strip(), sender_name=user.display_name)
        await ws.send(
            json.dumps(
                {"type": "ack", "client_id": data.get("client_id"), "message": message.to_json()}, ensure_ascii=False
            )
        )


class _Viewer:
    """Who a screen-pop is built for when the bus (not the agent's own frame) triggers it."""

    def __init__(self, user_id: int, role: str) -> None:
        self.id = user_id
        self.role = role

"""The agent console's live side: one WebSocket per agent tab.

Agents accept waiting conversations (exactly one wins), reply, return to the bot and
close. The queue list is pushed to every agent on every change.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from handoff.conversations import ConversationStore
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

    async def on_event(self, event: dict[str, Any]) -> None:
        if not self._sockets:
            return
        kind = event.get("kind")
        if kind == "message" and event.get("agent_id") is not None:
            frame = json.dumps({"type": "message", "message": event["message"]}, ensure_ascii=False)
            await self._send_to(int(event["agent_id"]), frame)
        elif kind == "state":
            frame = json.dumps({"type": "queue", "items": await self._queue_items()}, ensure_ascii=False)
            for agent_id in list(self._sockets):
                await self._send_to(agent_id, frame)
            previous_agent = (event.get("data") or {}).get("previous_agent_id")
            if event.get("previous") == "agent" and previous_agent is not None:
                closed = json.dumps({"type": "closed", "conversation_id": event["conversation_id"]})
                await self._send_to(int(previous_agent), closed)

    async def _send_to(self, agent_id: int, frame: str) -> None:
        for socket in list(self._sockets.get(agent_id, ())):
            try:
                await socket.send(frame)
            except Exception:
                self._sockets[agent_id].discard(socket)

    async def serve(self, ws: Any, user: Any) -> None:
        self._sockets[user.id].add(ws)
        try:
            await ws.send(json.dumps({"type": "queue", "items": await self._queue_items()}, ensure_ascii=False))
            for conversation_id in sorted(await self._ownership.agent_conversations(user.id)):
                await ws.send(json.dumps(await self._assigned_frame(conversation_id, user), ensure_ascii=False))
            async for raw in ws:
                try:
                    await self._handle(ws, user, raw)
                except ConsoleError as error:
                    await ws.send(json.dumps({"type": "error", "code": error.code, "reason": ERRORS[error.code]}, ensure_ascii=False))
        finally:
            self._sockets[user.id].discard(ws)
            if not self._sockets[user.id]:
                self._sockets.pop(user.id, None)

    async def _handle(self, ws: Any, user: Any, raw: str | bytes) -> None:
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise ConsoleError("bad_json") from error
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ConsoleError("bad_field")
        kind = data["type"]
        if kind == "ping":
            await ws.send(json.dumps({"type": "pong", "at": time.time()}))
            return
        conversation_id = data.get("conversation_id")
        if not isinstance(conversation_id, str):
            raise ConsoleError("bad_field")
        conversation = await self._conversations.get(conversation_id)
        if conversation is None:
            raise ConsoleError("taken")
        if kind == "accept":
            await self._accept(ws, user, conversation)
        elif kind == "reply":
            await self._reply(ws, user, conversation, data)
        elif kind in {"close", "return_to_bot"}:
            await self._release(user, conversation, kind, data)
        else:
            raise ConsoleError("unknown_type")

    async def _accept(self, ws: Any, user: Any, conversation: Any) -> None:
        result = await self._ownership.apply(
            conversation.id, "assign", actor=f"agent:{user.id}", agent_id=user.id, capacity=self._capacity
        )
        if not result.ok:
            raise ConsoleError("at_capacity" if result.reason == "at_capacity" else "taken")
        text = str(self._hub.settings.get("handoff.assigned_reply")).format(agent=user.display_name)
        await self._hub.say(conversation, "system", text)
        frame = await self._assigned_frame(conversation.id, user)
        await self._send_to(user.id, json.dumps(frame, ensure_ascii=False))

    async def _assigned_frame(self, conversation_id: str, user: Any) -> dict[str, Any]:
        transcript = await self._conversations.transcript(conversation_id)
        return {
            "type": "assigned",
            "conversation_id": conversation_id,
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
            json.dumps({"type": "ack", "client_id": data.get("client_id"), "message": message.to_json()}, ensure_ascii=False)
        )

    async def _release(self, user: Any, conversation: Any, kind: str, data: dict[str, Any]) -> None:
        await self._owned(user, conversation.id)
        details = {"previous_agent_id": user.id}
        if kind == "close":
            details["disposition"] = str(data.get("disposition") or "resolved")[:32]
        result = await self._ownership.apply(conversation.id, kind, actor=f"agent:{user.id}", data=details)
        if not result.ok:
            raise ConsoleError("not_yours")
        reply_key = "handoff.closed_reply" if kind == "close" else "handoff.returned_reply"
        await self._hub.say(conversation, "system", str(self._hub.settings.get(reply_key)))

"""The agent console's live side: one WebSocket per agent tab.

Agents accept waiting conversations (exactly one wins) or get them assigned automatically,
reply, transfer (to a colleague or a group, with a memo), return to the bot and close
(with a disposition and a summary). The queue list is pushed to every agent on every
change (coalesced). Each socket is a presence heartbeat; agents set online/busy/away.
Supervisors also get the board (queues, waits, agents' states and loads).

Console features: 内部备注 (`note` frames; handoff.notes), typing both ways (`typing` frames,
throttled, through the Dispatcher), agent assist (an `assist` frame with the top KB answers for
the citizen's last message, on every new citizen message), and after a reconnect a `sync` frame
(the conversations still mine) followed by each one's full transcript, so nothing is lost.
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

from core.bus import EventBus
from core.events import (
    CitizenPresenceEvent,
    Event,
    MessageEvent,
    NoteEvent,
    PresenceEvent,
    StateEvent,
    TypingEvent,
    WatchEvent,
    WhisperEvent,
)
from handoff.assist import Assist, Suggest, last_suggestible, suggestible
from handoff.conversations import ConversationStore, ConversationView, MessageView
from handoff.errors import HandoffError
from handoff.message_writer import deliver_before_commit
from handoff.notes import MAX_NOTE, NoteError, add_note
from handoff.outboxes import AgentOutboxes
from handoff.service import Handoff
from handoff.speaker import Speaker
from handoff.state import Owner, OwnerState

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 2000
SCREEN_POPS_AT_ONCE = 8  # screen-pops this worker builds together (each reads ~5 rows at once)
TYPING_THROTTLE_SECONDS = 2.0  # an agent's typing reaches the citizen at most this often
# a frame from an agent is a heartbeat, passed on at most this often (the sweeper's tick also
# refreshes every agent with a socket here): a burst of frames costs one Redis round trip
HEARTBEAT_EVERY_SECONDS = 5.0
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
    "note_empty": "备注内容不能为空。",
    "note_too_long": f"备注太长了（不超过 {MAX_NOTE} 字）。",
}

ScreenPop = Callable[[str, Any], Awaitable[dict[str, Any]]]
# writes the `view_citizen` audit row of a screen-pop once it is on the agent's screen
# (conversation id, viewer, citizen id); None: the ScreenPop audits while it builds
AuditScreenPop = Callable[[str, Any, Any], Awaitable[None]]


class ConsoleError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class AgentConsole:
    def __init__(
        self,
        handoff: Handoff,
        speaker: Speaker,  # the message path: an agent's replies and typing reach the citizen through it
        bus: EventBus,
        conversations: ConversationStore,
        screen_pop: ScreenPop,
        suggest: Suggest | None = None,
        audit_screen_pop: AuditScreenPop | None = None,
        screen: Callable[[str], list[Any]] | None = None,  # content review: forbidden words in a reply (qa)
    ) -> None:
        self._screen = screen
        self._speaker = speaker
        self._bus = bus
        self._audit_screen_pop = audit_screen_pop
        self._audits: set[asyncio.Task[None]] = set()
        self._building = asyncio.Semaphore(SCREEN_POPS_AT_ONCE)
        self._assist = Assist(suggest)
        self._typing_at: dict[tuple[int, str], float] = {}
        self._heartbeat_at: dict[int, float] = {}  # agent → when a frame of theirs last refreshed presence
        self._ownership = handoff.ownership
        self._conversations = conversations
        self._screen_pop = screen_pop
        self._queue_items = handoff.queue_items
        self._out = AgentOutboxes()
        self._sockets = self._out.sockets  # agent → their sockets on this worker
        self._supervisors: set[int] = set()
        self._handoff = handoff
        self._handoff.local_agents = lambda: list(self._sockets)
        self._queue_dirty = False
        self._queue_task: asyncio.Task[None] | None = None
        self._queue_sent = ""  # the queue list last pushed to every agent here
        self._board_dirty = False
        # conversation → supervisors with a socket on this worker (an index of the lists in Redis)
        self._watching: dict[str, set[int]] = defaultdict(set)
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
            if frame == self._queue_sent:
                continue  # nothing an agent sees has changed (a socket opened since got it on opening)
            self._queue_sent = frame
            for agent_id in list(self._sockets):
                await self._out.send(agent_id, frame)

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
                await self._out.send(agent_id, frame)

    async def on_event(self, event: Event) -> None:
        """Called by the bus listener for every event: only cheap work here; anything that reads
        the database (the screen-pop) goes through the agent's ordered outbox."""
        if not self._sockets:
            return
        if isinstance(event, MessageEvent | WhisperEvent) and event.conversation_id in self._watching:
            frame = json.dumps({"type": "message", "message": event.message, "watching": True}, ensure_ascii=False)
            for supervisor in self._watching[event.conversation_id] - {event.agent_id}:
                self._out.post(supervisor, frame)
        if isinstance(event, MessageEvent):
            if event.agent_id is not None:
                self._on_message(event, int(event.agent_id))
        elif isinstance(event, NoteEvent):
            frame = json.dumps({"type": "note", "message": event.message}, ensure_ascii=False)
            targets = set(self._watching.get(event.conversation_id, ()))
            if event.agent_id is not None:
                targets.add(int(event.agent_id))
            for target in targets:
                self._out.post(target, frame)
        elif isinstance(event, TypingEvent):
            if event.sender == "citizen" and event.agent_id is not None:
                frame = json.dumps(
                    {
                        "type": "typing",
                        "conversation_id": event.conversation_id,
                        "sender": "citizen",
                        "active": event.active is not False,
                    }
                )
                self._out.post(int(event.agent_id), frame)
        elif isinstance(event, CitizenPresenceEvent):
            if event.agent_id is not None:
                # the citizen closed (or came back to) the chat page they are served on: the agent sees it
                frame = json.dumps(
                    {"type": "citizen_presence", "conversation_id": event.conversation_id, "present": event.present}
                )
                self._out.post(int(event.agent_id), frame)
        elif isinstance(event, StateEvent):
            self._on_state(event)
        elif isinstance(event, WhisperEvent):
            if event.agent_id is not None:
                frame = json.dumps({"type": "message", "message": event.message}, ensure_ascii=False)
                self._out.post(int(event.agent_id), frame)
        elif isinstance(event, WatchEvent):
            self._watch_changed(event)
        elif isinstance(event, PresenceEvent):
            agent_id = int(event.agent_id)
            if agent_id in self._sockets:
                self._out.post(agent_id, json.dumps({"type": "presence", "status": event.status}))
            self._board_changed()

    def _on_message(self, event: MessageEvent, agent_id: int) -> None:
        """A transcript line of a conversation an agent serves: to their console, and 智能推荐 for a citizen's."""
        frame = json.dumps({"type": "message", "message": event.message}, ensure_ascii=False)
        self._out.post(agent_id, frame)
        message = event.message
        if message.get("sender") == "citizen" and suggestible(message):
            self._assist.recent.remember(event.conversation_id, message)
            self._out.post(agent_id, functools.partial(self._assist.json, event.conversation_id, message))

    def _on_state(self, event: StateEvent) -> None:
        """An ownership change: the queue list and the board change; the agent who lost it is told;
        the agent who got it gets its screen-pop."""
        self._queue_changed()
        self._board_changed()
        previous_agent = event.data.get("previous_agent_id")
        if event.previous == Owner.AGENT and previous_agent is not None and previous_agent != event.agent_id:
            closed = json.dumps(
                {
                    "type": "closed",
                    "conversation_id": event.conversation_id,
                    "transition": event.transition,
                    "take_over": bool(event.data.get("take_over")),
                }
            )
            self._out.post(int(previous_agent), closed)
        agent_id = event.agent_id
        if event.owner == Owner.AGENT and agent_id is not None and int(agent_id) in self._sockets:
            # the screen-pop, on whichever worker holds the agent's socket (manual, auto, transfer)
            # built at once (beside the agent's other screen-pops), sent in the outbox's order
            building = asyncio.create_task(self._build_assigned(int(agent_id), event))
            building.add_done_callback(_retrieved)  # a socket gone meanwhile never awaits it
            self._out.post(int(agent_id), functools.partial(self._assigned_for, int(agent_id), building))

    async def _build_assigned(self, agent_id: int, event: StateEvent) -> tuple[Any, dict[str, Any]]:
        found = await self._handoff.user(agent_id)
        user = _Viewer(agent_id, found[2] if found else "agent")
        async with self._building:  # a burst of assignments does not take every database connection
            assigned = await self._assigned_frame(event.conversation_id, user)
        assigned["transition"] = event.transition
        assigned["auto"] = bool(event.data.get("auto"))
        return user, assigned

    async def _assigned_for(self, agent_id: int, building: asyncio.Task[tuple[Any, dict[str, Any]]]) -> None:
        """The screen-pop of a conversation that has just reached this agent: sent from here (in
        the agent's outbox order), then its audit row is written, then 智能推荐 follows in its
        own `assist` frame (neither delays the screen-pop)."""
        user, assigned = await building
        conversation_id = assigned["conversation_id"]
        await self._out.send(agent_id, json.dumps(assigned, ensure_ascii=False, default=str))
        self._audit_later(conversation_id, user, assigned)
        source = last_suggestible(assigned["transcript"])
        if source is not None:
            self._out.post(agent_id, functools.partial(self._assist.json, conversation_id, source))

    async def _audit(self, conversation_id: str, user: Any, frame: dict[str, Any]) -> None:
        """The screen-pop's audit row, once the frame is sent (every screen-pop has one)."""
        if self._audit_screen_pop is not None:
            await self._audit_screen_pop(conversation_id, user, frame["screen_pop"]["citizen"]["id"])

    def _audit_later(self, conversation_id: str, user: Any, frame: dict[str, Any]) -> None:
        """`_audit` beside the next frames (the agent's outbox does not wait for its commit)."""
        task = asyncio.create_task(self._audit(conversation_id, user, frame))
        self._audits.add(task)
        task.add_done_callback(self._audit_done)

    def _audit_done(self, task: asyncio.Task[None]) -> None:
        self._audits.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not write a screen-pop audit row: %r", task.exception())

    async def serve(self, ws: Any, user: Any) -> None:
        self._out.add(user.id, ws)
        self._queue_sent = ""  # this socket reads the list itself: the next push goes to everyone
        if user.role == "supervisor":
            self._supervisors.add(user.id)
        try:
            status = await self._handoff.connect(user)
            await ws.send(json.dumps({"type": "presence", "status": status}))
            await ws.send(json.dumps({"type": "queue", "items": await self._queue_items()}, ensure_ascii=False))
            mine = sorted(await self._ownership.agent_conversations(user.id))
            # a reconnecting console drops the tabs that left meanwhile, then gets each transcript whole
            await ws.send(json.dumps({"type": "sync", "conversation_ids": mine}))
            sources = []
            for conversation_id in mine:
                frame = await self._assigned_frame(conversation_id, user)
                await ws.send(json.dumps(frame, ensure_ascii=False, default=str))
                await self._audit(conversation_id, user, frame)
                sources.append((conversation_id, last_suggestible(frame["transcript"])))
            for conversation_id, source in sources:  # 智能推荐 after every transcript is on screen
                if source is not None:
                    await ws.send(await self._assist.json(conversation_id, source))
            if user.role == "supervisor":
                await ws.send(json.dumps(await self._handoff.board(), ensure_ascii=False, default=str))
                await self._resume_watching(ws, user)
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
                await self._heartbeat(user.id)
        finally:
            if self._out.remove(user.id, ws):
                self._supervisors.discard(user.id)
                self._unwatch(user.id)
                self._heartbeat_at.pop(user.id, None)

    async def _heartbeat(self, agent_id: int) -> None:
        """A frame from an agent is a heartbeat: passed on after the frame's own work (a reply does
        not wait for it) and at most every HEARTBEAT_EVERY_SECONDS."""
        now = time.monotonic()
        if now - self._heartbeat_at.get(agent_id, 0.0) >= HEARTBEAT_EVERY_SECONDS:
            self._heartbeat_at[agent_id] = now
            await self._handoff.heartbeat(agent_id)

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
        if kind == "typing":
            await self._typing(user, conversation_id, data.get("active", True))
            return
        conversation = await self._conversation(conversation_id, fixed_only=kind == "reply")
        if conversation is None:
            raise ConsoleError("taken")
        if kind in ("watch", "unwatch", "whisper", "take_over") and user.role != "supervisor":
            raise ConsoleError("forbidden")
        if kind == "watch":
            self._watching[conversation.id].add(user.id)
            await self._handoff.watch(user.id, conversation.id)
            await self._send_watching(ws, user, conversation.id)
        elif kind == "unwatch":
            self._unwatch(user.id, conversation.id)
            await self._handoff.watch(user.id, conversation.id, on=False)
        elif kind == "whisper":
            await self._handoff.whisper(conversation, user, data.get("text"))
        elif kind == "take_over":
            load = await self._handoff.take_over(conversation, user)
            await ws.send(json.dumps({"type": "taken_over", "conversation_id": conversation.id, **load}))
        elif kind == "accept":
            await self._handoff.accept(conversation, user)
        elif kind == "reply":
            await self._reply(ws, user, conversation, data)
        elif kind == "note":
            await self._note(ws, user, conversation, data)
        elif kind in ("close", "return_to_bot"):
            disposition, summary = data.get("disposition") or "resolved", data.get("summary") or ""
            if not isinstance(disposition, str) or not isinstance(summary, str):
                raise ConsoleError("bad_field")
            if kind == "close":
                await self._handoff.close(conversation, user.id, disposition, summary)
            else:
                await self._handoff.return_to_bot(conversation, user.id, disposition, summary)
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

    async def _send_watching(self, ws: Any, user: Any, conversation_id: str) -> None:
        frame = await self._assigned_frame(conversation_id, user)
        frame["type"] = "watching"
        await ws.send(json.dumps(frame, ensure_ascii=False, default=str))
        await self._audit(conversation_id, user, frame)

    async def _resume_watching(self, ws: Any, user: Any) -> None:
        """A supervisor's socket (re)opened, on whichever worker: what they watch lives in Redis."""
        for conversation_id in await self._handoff.watched(user.id):
            self._watching[conversation_id].add(user.id)
            await self._send_watching(ws, user, conversation_id)

    def _watch_changed(self, event: WatchEvent) -> None:
        """Another socket of a supervisor (maybe on another worker) started or stopped a watch."""
        supervisor = int(event.supervisor_id)
        if supervisor not in self._sockets:
            return
        if event.on:
            self._watching[str(event.conversation_id)].add(supervisor)
        else:
            self._unwatch(supervisor, str(event.conversation_id))

    def _unwatch(self, user_id: int, conversation_id: str | None = None) -> None:
        """Stop forwarding to this worker's sockets (the watch list in Redis is the Handoff's)."""
        for conv in [conversation_id] if conversation_id else list(self._watching):
            watchers = self._watching.get(conv)
            if watchers is not None:
                watchers.discard(user_id)
                if not watchers:
                    self._watching.pop(conv, None)

    async def _assigned_frame(self, conversation_id: str, user: Any) -> dict[str, Any]:
        """The transcript, the group, the transfer memo and the CRM panel, read at once."""
        transcript, (group, memo), screen_pop = await asyncio.gather(
            self._conversations.transcript(conversation_id),
            self._handoff.group_and_memo(conversation_id),
            self._screen_pop(conversation_id, user),
        )
        # the agent's replies will need the record: the screen-pop has just read it (no second SELECT)
        await self._conversation(conversation_id, fixed_only=True)
        lines = [m.to_json() for m in transcript if m.sender == "citizen"]
        self._assist.recent.seed(conversation_id, [m for m in lines if suggestible(m)])
        return {
            "type": "assigned",
            "conversation_id": conversation_id,
            "group": group,
            "memo": memo,
            "transcript": [message.to_json() for message in transcript],
            "screen_pop": screen_pop,
        }

    async def _typing(self, user: Any, conversation_id: str, active: Any) -> None:
        """The agent is writing (or stopped): passed to the citizen at most every 2 s."""
        if not isinstance(active, bool):
            raise ConsoleError("bad_field")
        await self._owned(user, conversation_id)
        key, now = (user.id, conversation_id), time.monotonic()
        if active and now - self._typing_at.get(key, 0.0) < TYPING_THROTTLE_SECONDS:
            return
        if active:
            self._typing_at[key] = now
        else:
            self._typing_at.pop(key, None)
        if len(self._typing_at) > 10_000:  # forget old entries (nothing depends on them)
            self._typing_at = {k: t for k, t in self._typing_at.items() if now - t < TYPING_THROTTLE_SECONDS}
        await self._speaker.typing(conversation_id, "agent", active)

    async def _note(self, ws: Any, user: Any, conversation: Any, data: dict[str, Any]) -> None:
        """内部备注 by the serving agent or a supervisor; colleagues only, never the citizen."""
        state = await self._ownership.state(conversation.id)
        serving = state.owner == Owner.AGENT and state.agent_id == user.id
        if not serving and user.role not in ("supervisor", "admin"):
            raise ConsoleError("not_yours")
        try:
            message: MessageView = await add_note(
                self._conversations, self._bus, conversation, user, data.get("text"), state.agent_id
            )
        except NoteError as error:
            raise ConsoleError(f"note_{error.code}") from error
        await ws.send(
            json.dumps(
                {"type": "note_ack", "client_id": data.get("client_id"), "message": message.to_json()},
                ensure_ascii=False,
            )
        )

    async def _owned(self, user: Any, conversation_id: str) -> OwnerState:
        state = await self._ownership.state(conversation_id)
        if state.owner != Owner.AGENT or state.agent_id != user.id:
            raise ConsoleError("not_yours")
        return state

    async def _conversation(self, conversation_id: str, *, fixed_only: bool = False) -> ConversationView | None:
        """The conversation's record. `fixed_only`: the caller uses only what never changes (a reply,
        whose ownership comes from Redis): a copy read earlier on this worker does."""
        if fixed_only:
            return await self._conversations.fixed(conversation_id)
        return await self._conversations.get(conversation_id)

    async def _reply(self, ws: Any, user: Any, conversation: Any, data: dict[str, Any]) -> None:
        text = data.get("text")
        if not isinstance(text, str):
            raise ConsoleError("bad_field")
        if not text.strip():
            raise ConsoleError("empty")
        if len(text) > MAX_REPLY_CHARS:
            raise ConsoleError("too_long")
        if self._screen is not None and (held := self._screen(text)):  # held back, never sent (内容审核)
            refused = HandoffError("forbidden_words")
            refused.reason = f"消息含有禁用词“{'、'.join(dict.fromkeys(h.word for h in held))}”，未发送，请修改后再发。"
            raise refused
        state = await self._owned(user, conversation.id)
        client_id = data.get("client_id")
        # the console's own id for the reply: an echo after a reconnect settles the right bubble
        meta = {"client_id": client_id} if isinstance(client_id, str) and 0 < len(client_id) <= 64 else None
        # the citizen's copy goes out as soon as the row has its id in the writer (which never drops
        # it: handoff.message_writer); the agent is acknowledged once it is committed
        with deliver_before_commit():
            message = await self._speaker.say(
                conversation, "agent", text.strip(), sender_name=user.display_name, meta=meta, state=state
            )
        await self._conversations.committed(message.id)
        await ws.send(
            json.dumps(
                {"type": "ack", "client_id": data.get("client_id"), "message": message.to_json()}, ensure_ascii=False
            )
        )


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a task's outcome seen (its awaiter reports failures; nobody else must)."""
    if not task.cancelled():
        task.exception()


class _Viewer:
    """Who a screen-pop is built for when the bus (not the agent's own frame) triggers it."""

    def __init__(self, user_id: int, role: str) -> None:
        self.id = user_id
        self.role = role

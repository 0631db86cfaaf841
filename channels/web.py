"""The web chat widget's channel: JSON frames over a WebSocket.

Every frame is validated before anything is stored; a bad one gets an error frame in
Chinese and changes nothing. A citizen message is acknowledged only after it is committed;
when the bot is asked, the hub publishes `{"type": "typing", "sender": "bot"}` to the citizen.

The page may be embedded on a bureau's own site (hub/static/widget.js), so a browser's
socket is accepted only from the hub's own origin or `channels.web.allowed_origins`; any
other `Origin` is closed with code 4403. A client without an `Origin` header is not a
browser page (tests, benchmarks) and is let through: the check guards against other sites'
pages, which a browser always labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from channels.base import InboundMessage, OutboundMessage
from core.events import Event, MessageEvent, StateEvent, TypingEvent

log = logging.getLogger(__name__)

CHANNEL = "web"

ERRORS = {
    "bad_json": "消息格式错误，无法识别。",
    "too_long": "消息太长了，请分几次发送（每条不超过 {limit} 字）。",
    "bad_field": "消息内容不完整或格式不对。",
    "empty": "不能发送空消息。",
    "need_hello": "连接尚未就绪，请刷新页面后重试。",
    "unknown_type": "不支持的消息类型。",
    "server": "系统繁忙，消息未发送成功，请稍后重试。",
    "rate_limited": "您发送消息太快了，这条消息未发送，请稍等片刻再发。",
}
READ_AHEAD_FRAMES = 256  # frames read from a socket ahead of the ones being handled (then: rate_limited)


TYPING_THROTTLE_SECONDS = 2.0  # a citizen's typing reaches the agent at most this often
ORIGIN_REFUSED = 4403  # close code for a socket opened by a page of a site not allowed
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
POSITION_DEBOUNCE_SECONDS = 0.05  # queue-position refreshes of a burst of transitions go out together
QUEUE_JUMPS = frozenset({"requeue", "transfer_to_group"})  # they enter at the front: everyone behind moves


def normalise_origin(value: str) -> str | None:
    """`scheme://host[:port]` lower-cased with the default port dropped; None when not an origin."""
    value = (value or "").strip().rstrip("/")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = (parts.scheme or "").lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or parts.path or parts.query or parts.username:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_list(value: Any) -> list[str]:
    """`channels.web.allowed_origins` as a list: a YAML list, or a string separated by commas or spaces
    (what an environment variable gives). Entries that are not origins are dropped."""
    if isinstance(value, str):
        items: list[Any] = value.replace(",", " ").split()
    elif isinstance(value, list | tuple | set):
        items = list(value)
    else:
        items = []
    out: list[str] = []
    for item in items:
        origin = normalise_origin(str(item))
        if origin and origin not in out:
            out.append(origin)
    return out


@dataclass(frozen=True)
class OriginPolicy:
    """Which pages may open the chat socket (and, on /chat, frame the page)."""

    allowed: tuple[str, ...] = ()
    public_url: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> OriginPolicy:
        if settings is None:
            return cls()
        public = normalise_origin(str(settings.get("hub.public_url") or "")) or ""
        return cls(tuple(origin_list(settings.get("channels.web.allowed_origins"))), public)

    def permits(self, origin: str | None, host: str | None, scheme: str = "http") -> bool:
        """`origin` is the browser's Origin header (None when absent); `host` the request's Host header."""
        if origin is None:
            return True
        found = normalise_origin(origin)
        if found is None:
            return False  # "null" (sandboxed frames, file:) or garbage
        if found in self.allowed or (self.public_url and found == self.public_url):
            return True
        if host:
            own = {normalise_origin(f"{s}://{host}") for s in ("http", "https")}
            return found in own
        return False


class FrameError(ValueError):
    def __init__(self, code: str, **values: Any) -> None:
        super().__init__(code)
        self.code = code
        self.reason = ERRORS[code].format(**values)


@dataclass(frozen=True)
class Frame:
    type: str
    data: dict[str, Any]


def parse_frame(raw: str | bytes, *, max_frame_chars: int, max_text_chars: int) -> Frame:
    """Validate one client frame (pure, so it is tested alone)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FrameError("bad_json") from error
    if len(raw) > max_frame_chars:
        raise FrameError("too_long", limit=max_text_chars)
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise FrameError("bad_json") from error
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("bad_field")
    kind = data["type"]
    if kind == "hello":
        visitor = data.get("visitor_id")
        if visitor is not None and not isinstance(visitor, str):
            raise FrameError("bad_field")
    elif kind == "message":
        text, client_id = data.get("text"), data.get("client_id")
        if not isinstance(text, str) or not isinstance(client_id, str) or not 0 < len(client_id) <= 64:
            raise FrameError("bad_field")
        if not text.strip():
            raise FrameError("empty")
        if len(text) > max_text_chars:
            raise FrameError("too_long", limit=max_text_chars)
        title = data.get("title")  # a quick reply: `text` is its payload, `title` what the citizen saw
        if title is not None and (not isinstance(title, str) or not title.strip() or len(title) > 100):
            raise FrameError("bad_field")
    elif kind == "typing":  # the citizen is writing to an agent (active false: stopped)
        if not isinstance(data.get("active", True), bool):
            raise FrameError("bad_field")
    elif kind not in {"human", "ping", "leave_message", "csat"}:
        raise FrameError("unknown_type")
    return Frame(kind, data)


def valid_visitor_id(value: str | None) -> str:
    """Keep a well-formed visitor id from the browser; mint a new one otherwise."""
    try:
        return str(uuid.UUID(value)) if value else str(uuid.uuid4())
    except ValueError:
        return str(uuid.uuid4())


class ChatHub(Protocol):
    """What the web channel needs from the hub (the hub's Dispatcher provides it)."""

    async def open_conversation(self, channel: str, channel_user_id: str) -> Any: ...
    async def on_inbound(self, inbound: InboundMessage, ack: Any, conversation: Any = None) -> Any: ...
    async def request_human(self, conversation: Any, *, reason: str, announce: bool) -> str: ...
    async def typing(self, conversation_id: str, sender: str, active: bool = True) -> bool: ...
    async def leave_message(self, conversation: Any, text: Any) -> dict[str, Any]: ...
    async def rate(
        self, conversation_id: Any, score: Any, comment: Any = "", *, channel_user_id: str | None = None
    ) -> dict[str, Any]: ...
    async def citizen_present(self, conversation_id: str, present: bool) -> None: ...


class WebChannel:
    """Holds this worker's citizen sockets; the bus brings it every event for them."""

    name = CHANNEL
    shows_typing = True  # the bot's "typing…" is worth an event only where a page shows it

    def __init__(
        self,
        hub: ChatHub,
        state_frame: Any,
        history: Any,
        *,
        max_frame_chars: int,
        max_text_chars: int,
        state_frames: Any = None,
        public_id: Callable[[str], str] | None = None,
        allow_message: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        self._hub = hub
        # the browser's visitor id is its chat credential; the hub and staff see only this derivation
        self.public_id: Callable[[str], str] = public_id or (lambda secret: secret)
        # (visitor id, client address) -> may this message be taken (core.rate_limit.chat_allowed)
        self._allow_message = allow_message
        self._state_frame = state_frame  # async (conversation_id) -> dict
        self._state_frames = state_frames  # async (conversation ids) -> {id: dict}: many in one go
        self._last_state: dict[str, dict[str, Any]] = {}  # conversation → the state frame last sent
        self._queued: set[str] = set()  # conversations with a socket here whose citizen waits in a queue
        self._positions_dirty = False
        self._positions_task: asyncio.Task[None] | None = None
        self._history = history  # async (conversation_id) -> list[dict]
        self._max_frame = max_frame_chars
        self._max_text = max_text_chars
        self._sockets: dict[str, set[Any]] = defaultdict(set)
        # conversation → frames waiting behind one being made (a state frame reads Redis)
        self._outboxes: dict[str, deque[Any]] = {}
        self._pumps: set[asyncio.Task[None]] = set()
        self._origins: OriginPolicy | None = None

    def set_origin_policy(self, policy: OriginPolicy) -> None:
        self._origins = policy

    @property
    def origin_policy(self) -> OriginPolicy:
        if self._origins is None:
            self._origins = OriginPolicy.from_settings(getattr(self._hub, "settings", None))
        return self._origins

    async def send(self, channel_user_id: str, message: OutboundMessage) -> None:
        """Delivery happens through the bus (the socket may be on another worker)."""
        return None

    async def on_event(self, event: Event) -> None:
        """Called by the bus listener for every event, one after another: it never waits on Redis
        here (a state frame is read in the conversation's own ordered outbox), so one citizen's
        slow frame never holds up the next event, e.g. another citizen's agent reply."""
        if isinstance(event, MessageEvent):
            if event.channel == CHANNEL:
                frame: dict[str, Any] = {"type": "message", "message": event.message}
                await self._deliver(event.conversation_id, json.dumps(frame, ensure_ascii=False))
        elif isinstance(event, TypingEvent):
            if event.conversation_id and event.sender != "citizen":
                # someone is writing to the citizen (the agent console publishes this, throttled)
                frame = {"type": "typing", "sender": "agent" if event.sender == "agent" else "bot"}
                if event.active is False:
                    frame["active"] = False  # stopped (the agent cleared the reply box)
                await self._deliver(event.conversation_id, json.dumps(frame, ensure_ascii=False))
        elif isinstance(event, StateEvent):
            conversation_id = event.conversation_id
            if conversation_id in self._sockets:  # its own change: at once
                self._post(conversation_id, functools.partial(self._fresh_state, conversation_id))
            if event.previous == "queued" or event.transition in QUEUE_JUMPS:
                self._positions_changed()  # the others waiting here move: refreshed together, shortly

    async def _fresh_state(self, conversation_id: str) -> str | None:
        frame = await self._state_frame(conversation_id)
        self._state_sent(conversation_id, frame)
        return json.dumps(frame, ensure_ascii=False)

    async def _deliver(self, conversation_id: str, text: str) -> None:
        """Send a ready frame now, unless frames of this conversation wait in its outbox (then after them)."""
        if conversation_id in self._outboxes:
            self._post(conversation_id, text)
        else:
            await self._send_text(conversation_id, text)

    def _post(self, conversation_id: str, item: str | Callable[[], Awaitable[str | None]]) -> None:
        """Queue a frame (or a coroutine function making one) for a conversation's sockets; frames
        of one conversation leave in order, and the outbox lives only while it holds frames."""
        if conversation_id not in self._sockets:
            return
        outbox = self._outboxes.get(conversation_id)
        if outbox is not None:
            outbox.append(item)
            return
        outbox = self._outboxes[conversation_id] = deque([item])
        task = asyncio.create_task(self._pump(conversation_id, outbox))
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)

    async def _pump(self, conversation_id: str, outbox: deque[Any]) -> None:
        try:
            while outbox:
                item = outbox[0]
                try:
                    text = item if isinstance(item, str) else await item()
                    if text is not None:
                        await self._send_text(conversation_id, text)
                except Exception:
                    log.exception("could not send a frame to conversation %s", conversation_id)
                outbox.popleft()
        finally:
            if self._outboxes.get(conversation_id) is outbox:
                del self._outboxes[conversation_id]

    def _state_sent(self, conversation_id: str, frame: dict[str, Any]) -> None:
        """Remember what a citizen was last told (who waits on this worker, and what changed)."""
        self._last_state[conversation_id] = frame
        if frame.get("owner") == "queued":
            self._queued.add(conversation_id)
        else:
            self._queued.discard(conversation_id)

    def _positions_changed(self) -> None:
        """Coalesce queue-position refreshes: a burst of transitions costs one pass over this
        worker's waiting citizens, and one Redis round trip for all of them."""
        self._positions_dirty = True
        if self._positions_task is None or self._positions_task.done():
            self._positions_task = asyncio.create_task(self._refresh_positions())

    async def _refresh_positions(self) -> None:
        while self._positions_dirty:
            self._positions_dirty = False
            await asyncio.sleep(POSITION_DEBOUNCE_SECONDS)
            for gone in [c for c in self._queued if c not in self._sockets]:
                self._queued.discard(gone)
                self._last_state.pop(gone, None)
            waiting = sorted(self._queued)
            if not waiting:
                continue
            try:
                if self._state_frames is not None:
                    frames = await self._state_frames(waiting)
                else:
                    frames = {c: await self._state_frame(c) for c in waiting}
            except Exception:
                log.exception("could not refresh the queue positions")
                continue
            for conversation_id, frame in frames.items():
                if frame != self._last_state.get(conversation_id) and conversation_id in self._sockets:
                    self._state_sent(conversation_id, frame)
                    await self._deliver(conversation_id, json.dumps(frame, ensure_ascii=False))

    async def _send_text(self, conversation_id: str, text: str) -> None:
        for socket in list(self._sockets.get(conversation_id, ())):
            try:
                await socket.send(text)
            except Exception:
                self._sockets[conversation_id].discard(socket)

    async def serve(self, ws: Any, request: Any = None) -> None:
        """One citizen's socket, from `hello` to disconnect."""
        if not await self._origin_ok(ws, request):
            return
        conversation_id: str | None = None
        visitor_id: str | None = None
        typing_at = 0.0  # the last typing signal passed on from this socket (throttle)
        address = str(getattr(request, "remote_addr", "") or getattr(request, "ip", "") or "")
        try:
            async for raw in self._read_ahead(ws):
                try:
                    frame = parse_frame(raw, max_frame_chars=self._max_frame, max_text_chars=self._max_text)
                    if frame.type == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                        continue
                    if frame.type == "hello":
                        secret = valid_visitor_id(frame.data.get("visitor_id"))
                        visitor_id = self.public_id(secret)  # the credential itself goes back to this socket only
                        conversation = await self._hub.open_conversation(CHANNEL, visitor_id)
                        if conversation_id:
                            self._sockets[conversation_id].discard(ws)
                        conversation_id = conversation.id
                        self._sockets[conversation_id].add(ws)
                        await self._hub.citizen_present(conversation_id, True)
                        state = await self._state_frame(conversation_id)
                        self._state_sent(conversation_id, state)
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "welcome",
                                    "visitor_id": secret,
                                    "conversation_id": conversation_id,
                                    "owner": state["owner"],
                                    "history": await self._history(conversation_id),
                                },
                                ensure_ascii=False,
                            )
                        )
                        await ws.send(json.dumps(state, ensure_ascii=False))
                        continue
                    if visitor_id is None or conversation_id is None:
                        raise FrameError("need_hello")
                    if frame.type == "human":
                        conversation = await self._hub.open_conversation(CHANNEL, visitor_id)
                        await self._hub.request_human(conversation, reason="button", announce=True)
                        continue
                    if frame.type == "typing":
                        active = frame.data.get("active", True)
                        now = time.monotonic()
                        if not active or now - typing_at >= TYPING_THROTTLE_SECONDS:
                            passed = await self._hub.typing(conversation_id, "citizen", active)
                            typing_at = now if active and passed else 0.0
                        continue
                    if frame.type in {"leave_message", "csat"}:
                        await self._citizen_request(ws, visitor_id, frame)
                        continue
                    if self._allow_message is not None and not await self._allow_message(visitor_id, address):
                        await ws.send(json.dumps({"type": "error", "code": "rate_limited", "reason": ERRORS[
                            "rate_limited"], "client_id": frame.data.get("client_id")}, ensure_ascii=False))
                        continue
                    conversation_id = await self._on_message(ws, visitor_id, conversation_id, frame)
                except FrameError as error:
                    refusal = {"type": "error", "code": error.code, "reason": error.reason}
                    await ws.send(json.dumps(refusal, ensure_ascii=False))
        finally:
            if conversation_id:
                self._sockets[conversation_id].discard(ws)
                if not self._sockets[conversation_id]:
                    self._sockets.pop(conversation_id, None)
                    with contextlib.suppress(Exception):  # the page is gone either way
                        await self._hub.citizen_present(conversation_id, False)

    async def _read_ahead(self, ws: Any) -> Any:
        """The socket's frames, read as they arrive (so its pings are answered and it stays open while
        a message waits for the bot) and handed out one at a time, in order. Past READ_AHEAD_FRAMES
        waiting, a frame is answered with rate_limited at once and not taken."""
        waiting: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        async def read() -> None:
            try:
                async for raw in ws:
                    if waiting.qsize() < READ_AHEAD_FRAMES:
                        waiting.put_nowait(raw)
                        continue
                    refusal = {"type": "error", "code": "rate_limited", "reason": ERRORS["rate_limited"]}
                    try:
                        sent = json.loads(raw)
                        if isinstance(sent, dict) and isinstance(sent.get("client_id"), str):
                            refusal["client_id"] = sent["client_id"]
                    except ValueError:
                        pass
                    await ws.send(json.dumps(refusal, ensure_ascii=False))
            finally:
                waiting.put_nowait(done)

        reader = asyncio.create_task(read())
        try:
            while (raw := await waiting.get()) is not done:
                yield raw
            await reader  # a read error ends the socket as before
        finally:
            reader.cancel()

    async def _origin_ok(self, ws: Any, request: Any) -> bool:
        """Refuse (close 4403) a socket that a page of a site not on the allow-list opened."""
        if request is None:
            try:  # the hub's route passes no request: Sanic keeps the current one in a context variable
                from sanic import Request

                request = Request.get_current()
            except Exception:
                request = None
        headers = getattr(request, "headers", None) or {}
        origin = headers.get("origin")
        host = headers.get("host")
        if self.origin_policy.permits(origin, host):
            return True
        log.warning("web chat socket refused for origin %r", origin)
        try:
            await ws.close(code=ORIGIN_REFUSED, reason="origin not allowed")
        except Exception:
            pass
        return False

    async def _citizen_request(self, ws: Any, visitor_id: str, frame: Frame) -> None:
        """留言 (becomes a ticket) and 满意度评价; the hub validates and answers in Chinese."""
        try:
            if frame.type == "leave_message":
                conversation = await self._hub.open_conversation(CHANNEL, visitor_id)
                result = await self._hub.leave_message(conversation, frame.data.get("text"))
            else:
                data = frame.data
                result = await self._hub.rate(
                    data.get("conversation_id"),
                    data.get("score"),
                    data.get("comment") or "",
                    channel_user_id=visitor_id,
                )
        except Exception as error:
            code, reason = getattr(error, "code", None), getattr(error, "reason", None)
            if not isinstance(code, str) or not isinstance(reason, str):
                raise
            await ws.send(json.dumps({"type": "error", "code": code, "reason": reason}, ensure_ascii=False))
            return
        await ws.send(json.dumps({"type": "done", "request": frame.type, **result}, ensure_ascii=False, default=str))

    async def _on_message(self, ws: Any, visitor_id: str, conversation_id: str, frame: Frame) -> str:
        client_id = frame.data["client_id"]
        # a closed conversation's citizen writing again starts a new one: follow it
        conversation = await self._hub.open_conversation(CHANNEL, visitor_id)
        if conversation.id != conversation_id:
            self._sockets[conversation_id].discard(ws)
            conversation_id = conversation.id
            self._sockets[conversation_id].add(ws)

        async def ack(message: Any) -> None:
            await ws.send(
                json.dumps({"type": "ack", "client_id": client_id, "message": message.to_json()}, ensure_ascii=False)
            )

        title = frame.data.get("title")
        inbound = InboundMessage(
            CHANNEL,
            visitor_id,
            frame.data["text"].strip(),
            channel_message_id=f"{visitor_id}:{client_id}",
            meta={"button_title": title.strip()} if title else {},
        )
        try:
            # the bot's work must not hold up the next frame of this socket
            await asyncio.shield(self._hub.on_inbound(inbound, ack, conversation))
        except FrameError:
            raise
        except Exception as error:
            log.exception("failed to handle a web message")
            raise FrameError("server") from error
        return conversation_id

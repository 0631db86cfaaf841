"""The WeChat Official Account channel: pushes in, passive replies or customer-service messages out.

The five-second rule. WeChat waits 5 s for the answer to a push and then retries (3 times).
Each push is claimed in Redis under its dedupe id (`<prefix>wechat:push:<id>` = "pending");
the claimant commits the citizen's row, asks the bot, and collects what the hub `send`s to
this citizen *from within that request* (a context variable marks the request's task).
If the bot is done within `passive_reply_budget_ms`, its replies become the passive XML
reply and the Redis key holds that XML, so a retry on any worker answers the same XML.
Otherwise the request answers `success`, the key says "api", and the replies (those
collected so far and all later ones) go out in order through the customer-service API.
A retry that finds the key waits for it; the store's unique (channel, channel_message_id)
guarantees one transcript row whatever happens in Redis.

Replies that reach the citizen outside a push (agent replies, queue notices) always go
through the customer-service API; a failure is recorded on the conversation as a system
message with meta {"delivery_error": code}, so the agent sees it.
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import redis.asyncio as aioredis

from channels.base import InboundMessage, OutboundMessage, compact_text
from channels.wechat.api import WeChatAPI, WeChatAPIError
from channels.wechat.config import WeChatConfig
from channels.wechat.push import Push, PushError, open_push, passive_text, verify_url, wrap_reply
from core.redis_client import Keys

log = logging.getLogger(__name__)

CHANNEL = "wechat"
SUCCESS = "success"
MAX_TEXT_BYTES = 2000  # WeChat's text messages stop at 2048 bytes
ACK_DEADLINE = 4.5  # seconds: past this WeChat has given up on the request and will retry
MEDIA_TIMEOUT = 2.0  # seconds an image or voice push waits for its file before it is recorded without it
MEDIA_LABELS = {"image": "微信图片", "voice": "微信语音"}  # kinds whose file is kept, and its display name

NOTES = {
    "subscribe": "市民关注了公众号。",
    "unsubscribe": "市民已取消关注公众号，之后将无法向其发送消息。",
    "view": "市民点击了菜单链接：{url}",
    "click": "市民点击了菜单：{name}",
    "delivery": "消息未能送达微信用户：{reason}（错误码 {code}）。",
}


class WeChatHub(Protocol):
    """What the channel needs from the hub's Dispatcher."""

    async def open_conversation(self, channel: str, channel_user_id: str) -> Any: ...
    async def on_inbound(self, inbound: InboundMessage, ack: Any) -> Any: ...
    async def say(
        self, conversation: Any, sender: str, text: str, *, sender_name: str = "", meta: Any = None
    ) -> Any: ...


class WeChatRecords(Protocol):
    """Notes on a conversation that the agent sees, and what the channel learns about a citizen."""

    async def note(
        self, conversation_id: str, text: str, meta: dict[str, Any], *, channel_message_id: str | None = None
    ) -> bool: ...
    async def set_profile(self, citizen_id: int, *, name: str | None, unionid: str | None) -> None: ...


class WeChatFiles(Protocol):
    """Where a citizen's image or voice file is kept for the agent (core.uploads.ChannelFiles)."""

    async def keep(self, data: bytes, *, label: str, owner: dict[str, Any]) -> dict[str, Any]:
        """Store the file; returns the message's `meta.attachment` ({url, name, type, size})."""
        ...


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass
class Collector:
    """The replies to one push while its passive reply can still carry them."""

    openid: str
    accepting: bool = True
    messages: list[OutboundMessage] = field(default_factory=list)
    flushed: asyncio.Event = field(default_factory=asyncio.Event)
    committed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Plan:
    """What a push means: a citizen message for the normal path, a subscribe, a note, or nothing."""

    kind: str  # citizen / subscribe / note / ignore
    inbound: InboundMessage | None = None
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


_collector: contextvars.ContextVar[Collector | None] = contextvars.ContextVar("wechat_passive", default=None)


def _failure(task: asyncio.Task[Any]) -> BaseException | None:
    """The exception a finished task ended with (None while running or after success)."""
    if not task.done():
        return None
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception()


def plan_for(config: WeChatConfig, push: Push) -> Plan:
    """Map a verified push to what the hub does with it (pure)."""
    openid, dedupe = push.openid, push.dedupe_id

    def citizen(text: str, kind: str, **meta: Any) -> Plan:
        clean = {key: value for key, value in meta.items() if value not in ("", None)}
        return Plan("citizen", InboundMessage(CHANNEL, openid, text, channel_message_id=dedupe, kind=kind, meta=clean))

    kind = push.msg_type
    if kind == "text":
        text = push.get("Content").strip()
        if not text:
            raise PushError(400, "bad_field")
        return citizen(text, "text", bizmsgmenuid=push.get("bizmsgmenuid"))
    if kind == "voice":
        recognition = push.get("Recognition").strip()
        return citizen(
            recognition or "[语音]", "voice", media_id=push.get("MediaId"), format=push.get("Format"),
            recognition=recognition, no_recognition=not recognition or None,
        )
    if kind == "image":
        return citizen("[图片]", "image", media_id=push.get("MediaId"), pic_url=push.get("PicUrl"))
    if kind == "location":
        label = push.get("Label").strip()
        latitude, longitude = push.get("Location_X"), push.get("Location_Y")
        map_url = map_link(latitude, longitude)
        where = f"（{latitude}, {longitude}） {map_url}" if map_url else ""
        return citizen(
            " ".join(part for part in ("[位置]", label) if part) + where, "location",
            latitude=latitude, longitude=longitude, scale=push.get("Scale"), label=label, map_url=map_url,
        )
    if kind == "link":
        title, url = push.get("Title").strip(), push.get("Url").strip()
        shown = url if url.lower().startswith(("http://", "https://")) and not any(c.isspace() for c in url) else ""
        return citizen(
            " ".join(part for part in ("[链接]", title, shown) if part), "link",
            title=title, description=push.get("Description"), url=url,
        )
    if kind in {"video", "shortvideo"}:
        return citizen("[视频]", kind, media_id=push.get("MediaId"), thumb_media_id=push.get("ThumbMediaId"))
    if kind != "event":
        return citizen("[暂不支持的消息类型]", "unsupported", msg_type=kind)
    event = push.event
    if event == "subscribe":
        meta = {"event": "subscribe", "event_key": push.get("EventKey")}
        return Plan("subscribe", note=NOTES["subscribe"], meta=meta)
    if event == "unsubscribe":
        return Plan("note", note=NOTES["unsubscribe"], meta={"event": "unsubscribe"})
    if event == "view":
        url = push.get("EventKey")
        return Plan("note", note=NOTES["view"].format(url=url), meta={"event": "VIEW", "url": url})
    if event == "click":
        key = push.get("EventKey")
        action = config.menu_actions().get(key)
        if action and (action.question or action.intent):
            text = action.question or f"/{action.intent}"
            return citizen(text, "menu", event="CLICK", menu_key=key, menu_name=action.name)
        return Plan("note", note=NOTES["click"].format(name=key), meta={"event": "CLICK", "menu_key": key})
    return Plan("ignore")  # LOCATION reports, SCAN, template/mass-send results: nothing for an agent


def map_link(latitude: str, longitude: str) -> str:
    """An AMap (高德地图) marker for WeChat's coordinates (GCJ-02, as AMap uses), or "" if they are not numbers."""
    try:
        lat, lng = float(latitude), float(longitude)
    except ValueError:
        return ""
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return ""
    return f"https://uri.amap.com/marker?position={lng},{lat}"


def render_text(message: OutboundMessage) -> str:
    """A reply as WeChat text (a KB answer's short form when it has one); the bot's quick
    replies become tappable menu links."""
    text = compact_text(message)
    buttons = (message.meta or {}).get("buttons") or []
    links = []
    for number, button in enumerate(buttons, start=1):
        title = str(button.get("title") or "") if isinstance(button, dict) else ""
        if title:
            safe = html.escape(title, quote=True)
            links.append(f'<a href="weixin://bizmsgmenu?msgmenucontent={safe}&msgmenuid={number}">{safe}</a>')
    return text + ("\n\n" + "\n".join(links) if links else "")


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Cut a long text into pieces WeChat accepts, at character boundaries."""
    chunks, current, size = [], [], 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current or not chunks:
        chunks.append("".join(current))
    return chunks


class WeChatChannel:
    name = CHANNEL

    def __init__(
        self,
        config: WeChatConfig,
        hub: WeChatHub,
        records: WeChatRecords,
        redis: aioredis.Redis,
        keys: Keys,
        api: WeChatAPI,
        files: WeChatFiles | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self._files = files
        self._hub = hub
        self._records = records
        self._redis = redis
        self._keys = keys
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- HTTP ---------------------------------------------------------------------------------

    def verify(self, args: Any) -> Reply:
        try:
            return Reply(200, verify_url(self.config, args))
        except PushError as error:
            return Reply(error.status, error.reason)

    async def receive(self, args: Any, body: bytes) -> Reply:
        """One push from WeChat's servers; never raises, never a 5xx for bad input."""
        try:
            push = open_push(self.config, args, body)
            plan = plan_for(self.config, push)
        except PushError as error:
            return Reply(error.status, error.reason)
        if plan.kind == "ignore":
            return Reply(200, SUCCESS)
        try:
            return await self._claim(push, plan)
        except Exception:
            # storage trouble (Redis or the database), never the input: WeChat will retry and the store dedupes
            log.exception("a WeChat push could not be handled")
            return Reply(503, "系统繁忙，请稍后重试。")

    async def _claim(self, push: Push, plan: Plan) -> Reply:
        key = self._keys.wechat_push(push.dedupe_id)
        budget = self.config.budget_seconds
        deadline = asyncio.get_running_loop().time() + budget
        pending_ttl = int(budget) + 4
        while True:
            if await self._redis.set(key, "pending", nx=True, ex=pending_ttl):
                return await self._process(push, plan, key)
            # a retry: the first copy is being (or was) handled, maybe on another worker
            answer = await self._await_first(push, key, deadline)
            if answer is not None:
                return answer

    async def _await_first(self, push: Push, key: str, deadline: float) -> Reply | None:
        loop = asyncio.get_running_loop()
        while True:
            value = await self._redis.get(key)
            if value is None:
                return None  # its handler died before finishing: take over (the store still dedupes)
            if value.startswith("xml:"):
                return self._passive_reply(push, value[4:])
            if value != "pending" or loop.time() >= deadline:
                return Reply(200, SUCCESS)
            await asyncio.sleep(0.05)

    def _passive_reply(self, push: Push, xml: str) -> Reply:
        return Reply(200, wrap_reply(self.config, push, xml), "application/xml; charset=utf-8")

    async def _process(self, push: Push, plan: Plan, key: str) -> Reply:
        collector = Collector(push.openid)
        context = contextvars.copy_context()
        context.run(_collector.set, collector)
        task = asyncio.create_task(self._run(push, plan, collector), context=context)
        self._keep(task)
        try:
            return await self._answer(push, key, task, collector)
        finally:
            if collector.accepting:  # cancelled (WeChat hung up) or failed: the API takes over
                collector.accepting = False
                self._flush(collector)

    async def _answer(self, push: Push, key: str, task: asyncio.Task[None], collector: Collector) -> Reply:
        done, _ = await asyncio.wait({task}, timeout=self.config.budget_seconds)
        if task in done and _failure(task) is None:
            collector.accepting = False
            xml = self._passive_xml(push, collector.messages)
            if xml is not None:
                collector.flushed.set()
                await self._mark(key, "xml:" + xml)
                return self._passive_reply(push, xml)
            self._flush(collector)
            await self._mark(key, "done")
            return Reply(200, SUCCESS)
        collector.accepting = False
        self._flush(collector)
        if not collector.committed.is_set() and not task.done():
            # the replies will go through the API; the acknowledgement still waits for the commit,
            # as long as WeChat's own five seconds allow
            waiter = asyncio.ensure_future(collector.committed.wait())
            try:
                left = max(0.0, ACK_DEADLINE - self.config.budget_seconds)
                await asyncio.wait({task, waiter}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        if not collector.committed.is_set():
            # not safely stored (or failed): do not acknowledge; WeChat retries and the store dedupes
            await self._mark(key, None)
            if _failure(task) is not None:
                log.error("a WeChat push failed before it was stored", exc_info=_failure(task))
            return Reply(503, "系统繁忙，请稍后重试。")
        if _failure(task) is not None:
            log.error("handling a stored WeChat push failed", exc_info=_failure(task))
        await self._mark(key, "api")
        return Reply(200, SUCCESS)

    async def _mark(self, key: str, value: str | None) -> None:
        """Tell retries how this push ended (best effort: the answer to WeChat matters more)."""
        try:
            if value is None:
                await self._redis.delete(key)
            else:
                await self._redis.set(key, value, ex=60)
        except Exception:
            log.warning("could not record the outcome of WeChat push %s", key, exc_info=True)

    def _passive_xml(self, push: Push, messages: list[OutboundMessage]) -> str | None:
        if not messages:
            return None
        text = "\n\n".join(render_text(message) for message in messages)
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            return None
        return passive_text(push, text)

    def _flush(self, collector: Collector) -> None:
        """Deliver what was collected through the API, in order; later sends wait for it."""

        async def flush() -> None:
            try:
                for message in collector.messages:
                    await self._deliver(collector.openid, message)
            finally:
                collector.flushed.set()

        if collector.messages:
            self._keep(asyncio.create_task(flush()))
        else:
            collector.flushed.set()

    async def _run(self, push: Push, plan: Plan, collector: Collector) -> None:
        async def ack(_message: Any) -> None:
            collector.committed.set()

        if plan.kind == "citizen":
            assert plan.inbound is not None
            inbound = plan.inbound
            if inbound.kind in MEDIA_LABELS:
                inbound = await self._with_file(inbound)
            await self._hub.on_inbound(inbound, ack)
            self._learn_profile_later(push.openid)
            return
        conversation = await self._hub.open_conversation(CHANNEL, push.openid)
        is_new = await self._records.note(conversation.id, plan.note, plan.meta, channel_message_id=push.dedupe_id)
        collector.committed.set()
        if plan.kind == "subscribe" and is_new:
            if self.config.welcome:
                await self._hub.say(conversation, "bot", self.config.welcome, sender_name="智能客服")
            if self.config.menu_hint:
                await self._hub.say(conversation, "bot", self.config.menu_hint, sender_name="智能客服")
            self._learn_profile_later(push.openid)

    # -- citizens' images and voice ------------------------------------------------------------

    async def _with_file(self, inbound: InboundMessage) -> InboundMessage:
        """The push with its file kept for the agent (`meta.attachment`), fetched before the message is
        recorded so that the agent's first sight of it already shows it. The wait is bounded (the
        five-second rule); on any failure the message is recorded without the file and
        `meta.media_error` says why (its media_id stays for a later fetch within WeChat's three days)."""
        media_id = str(inbound.meta.get("media_id") or "")
        if self._files is None or not media_id:
            return inbound
        try:
            media = await asyncio.wait_for(self.api.get_media(media_id), MEDIA_TIMEOUT)
            owner = {"channel": CHANNEL, "openid": inbound.channel_user_id, "media_id": media_id}
            attachment = await self._files.keep(media.data, label=MEDIA_LABELS[inbound.kind], owner=owner)
        except WeChatAPIError as error:
            code, reason = error.code, error.chinese
        except TimeoutError:
            code, reason = "timeout", "下载超时"
        except ValueError:
            code, reason = "bad_type", "文件格式无法识别"
        except Exception:
            log.exception("could not keep WeChat media %s", media_id)
            code, reason = "store", "文件保存失败"
        else:
            return replace(inbound, meta={**inbound.meta, "attachment": attachment})
        log.warning("WeChat media %s of %s not kept: %s (%s)", media_id, inbound.channel_user_id, reason, code)
        failure = {"media_error": code, "media_error_text": f"文件未能获取：{reason}"}
        return replace(inbound, meta={**inbound.meta, **failure})

    # -- OutputChannel ------------------------------------------------------------------------

    async def send(self, channel_user_id: str, message: OutboundMessage) -> None:
        """Every bot, system and agent message for a WeChat conversation comes through here."""
        collector = _collector.get()
        if collector is not None and collector.openid == channel_user_id:
            if collector.accepting:
                collector.messages.append(message)
                return
            await collector.flushed.wait()
        await self._deliver(channel_user_id, message)

    async def _deliver(self, openid: str, message: OutboundMessage) -> None:
        try:
            for chunk in split_text(render_text(message)):
                await self.api.send_text(openid, chunk)
        except WeChatAPIError as error:
            log.warning("WeChat delivery to %s failed: %s", message.conversation_id, error)
            await self._delivery_failed(message, error.code, error.chinese)
        except Exception:
            log.exception("WeChat delivery to %s failed", message.conversation_id)
            await self._delivery_failed(message, "network", "无法连接微信服务器")

    async def _delivery_failed(self, message: OutboundMessage, code: int | str, reason: str) -> None:
        try:
            await self._records.note(
                message.conversation_id,
                NOTES["delivery"].format(reason=reason, code=code),
                {"delivery_error": code, "message_id": message.message_id},
            )
        except Exception:
            log.exception("could not record a WeChat delivery failure on %s", message.conversation_id)

    # -- the citizen's profile ----------------------------------------------------------------

    def _learn_profile_later(self, openid: str) -> None:
        if self.config.fetch_user_info and self.config.app_id:
            self._keep(asyncio.create_task(self._learn_profile(openid)))

    async def _learn_profile(self, openid: str) -> None:
        """Nickname and unionid from the user-info API, once a day per citizen."""
        try:
            if not await self._redis.set(self._keys.wechat_profile(openid), "1", nx=True, ex=86400):
                return
            info = await self.api.user_info(openid)
            name = info.get("nickname") if isinstance(info.get("nickname"), str) else None
            unionid = info.get("unionid") if isinstance(info.get("unionid"), str) else None
            if not name and not unionid:
                return  # WeChat no longer returns nicknames to most accounts
            conversation = await self._hub.open_conversation(CHANNEL, openid)
            await self._records.set_profile(conversation.citizen_id, name=(name or None) and name[:64], unionid=unionid)
        except Exception as error:
            log.info("no WeChat profile for %s: %s", openid, error)

    # -- housekeeping -------------------------------------------------------------------------

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, seconds: float = 10.0) -> None:
        """Wait for background deliveries (used at shutdown and by tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=seconds)

    async def aclose(self) -> None:
        await self.drain()
        await self.api.aclose()

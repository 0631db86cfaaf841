"""The Telegram channel: webhook updates in, `Bot.send_message` out (python-telegram-bot).

Webhook mode. Telegram POSTs each update to `/telegram/webhook` with the header
`X-Telegram-Bot-Api-Secret-Token` we gave `setWebhook`; a request without the right secret gets
403 and nothing is stored. Telegram resends an update until it gets a 2xx, so:

- each update's id is the citizen message's `channel_message_id` (`update:<update_id>`), and the
  store's unique (channel, channel_message_id) makes a resend a no-op (one row, one bot answer);
- the webhook answers 200 as soon as the message is committed; the bot's answer goes on in the
  background and reaches the citizen through `send` (as agents' and system messages do).

Handled: private chats' text (incl. `/start`, answered with the welcome), photos (text `[图片]`,
the largest size's `file_id` kept in meta), quick-reply button presses (callback queries whose
data is the button's payload). Other messages get a polite reply and are not stored; other
update kinds and group chats are ignored.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from channels.base import InboundMessage, OutboundMessage, compact_text
from channels.telegram.config import TelegramConfig

log = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_TEXT = 4096  # Telegram's limit for one message's text
MAX_CALLBACK_DATA = 64  # bytes
ACK_WAIT_SECONDS = 20.0

NOTES = {
    "start": "市民在 Telegram 发送了 /start，开始对话。",
    "delivery": "消息未能送达 Telegram 用户：{reason}",
}


class TelegramHub(Protocol):
    """What the channel needs from the hub's Dispatcher."""

    async def open_conversation(self, channel: str, channel_user_id: str) -> Any: ...
    async def on_inbound(self, inbound: InboundMessage, ack: Any) -> Any: ...
    async def say(
        self, conversation: Any, sender: str, text: str, *, sender_name: str = "", meta: Any = None
    ) -> Any: ...


class TelegramRecords(Protocol):
    """Notes on a conversation that the agent sees, and the citizen's display name."""

    async def note(
        self, conversation_id: str, text: str, meta: dict[str, Any], *, channel_message_id: str | None = None
    ) -> bool: ...
    async def set_name(self, citizen_id: int, name: str) -> None: ...


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] = field(default_factory=lambda: {"ok": True})


@dataclass(frozen=True)
class Parsed:
    """One update, reduced to what the hub needs."""

    kind: str  # text | image | start | button | unsupported | ignore
    update_id: int
    chat_id: str = ""
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    callback_id: str = ""

    @property
    def dedupe_id(self) -> str:
        return f"update:{self.update_id}"


def _name_of(user: Any) -> str:
    if user is None:
        return ""
    name = " ".join(part for part in (user.first_name, user.last_name) if part).strip()
    return (name or (f"@{user.username}" if user.username else ""))[:64]


def parse_update(data: dict[str, Any], bot: Bot | None = None) -> Parsed:
    """Parse a webhook body with python-telegram-bot's own classes (ValueError when it is not an update).

    Its classes do not check field types (`"text": false` is kept as is): a field of the wrong type
    is a bad update too, not a 500 (found by tests/reliability/test_fuzz_parsers.py)."""
    try:
        return _parse_update(data, bot)
    except (AttributeError, TypeError) as error:
        raise ValueError(f"not a Telegram update: {error}") from error


def _parse_update(data: dict[str, Any], bot: Bot | None) -> Parsed:
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise ValueError("not a Telegram update")
    try:
        update = Update.de_json(data, bot)
    except Exception as error:  # KeyError/TypeError from a malformed object
        raise ValueError(f"not a Telegram update: {error}") from error
    if update is None:
        raise ValueError("not a Telegram update")
    update_id = update.update_id
    if update.callback_query is not None:
        query = update.callback_query
        message = query.message
        chat = getattr(message, "chat", None)
        if chat is None or chat.type != "private" or not query.data:
            return Parsed("ignore", update_id, callback_id=query.id)
        title = query.data
        markup = getattr(message, "reply_markup", None)
        for row in getattr(markup, "inline_keyboard", None) or ():
            for button in row:
                if button.callback_data == query.data:
                    title = button.text
        return Parsed(
            "button",
            update_id,
            str(chat.id),
            query.data,
            {"button_title": title, "telegram": {"callback_query_id": query.id}},
            _name_of(query.from_user),
            query.id,
        )
    message = update.message
    if message is None or message.chat.type != "private":
        return Parsed("ignore", update_id)
    chat_id = str(message.chat.id)
    name = _name_of(message.from_user)
    base = {"telegram": {"message_id": message.message_id, "chat_id": message.chat.id}}
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        base["telegram"].update(
            file_id=largest.file_id,
            file_unique_id=largest.file_unique_id,
            width=largest.width,
            height=largest.height,
            file_size=largest.file_size,
        )
        caption = (message.caption or "").strip()
        if caption:
            base["telegram"]["caption"] = caption
        text = f"[图片] {caption}" if caption else "[图片]"
        return Parsed("image", update_id, chat_id, text, base, name)
    if message.text is not None:
        text = message.text.strip()
        if not text:
            return Parsed("ignore", update_id)
        command = text.split()[0].split("@")[0]
        if command == "/start":
            return Parsed("start", update_id, chat_id, text, base, name)
        return Parsed("text", update_id, chat_id, text, base, name)
    return Parsed("unsupported", update_id, chat_id, "", base, name)


def buttons_markup(meta: dict[str, Any]) -> InlineKeyboardMarkup | None:
    """The bot's quick replies (meta.buttons [{title, payload}]) as an inline keyboard."""
    rows = []
    for button in meta.get("buttons") or []:
        if not isinstance(button, dict):
            continue
        title = str(button.get("title") or "").strip()
        payload = str(button.get("payload") or title).strip()
        if title and payload and len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA:
            rows.append([InlineKeyboardButton(title[:64], callback_data=payload)])
    return InlineKeyboardMarkup(rows) if rows else None


def chunks(text: str, size: int = MAX_TEXT) -> list[str]:
    text = text or " "
    return [text[i : i + size] for i in range(0, len(text), size)]


class TelegramChannel:
    """One worker's Telegram channel (every worker has one: an agent's reply leaves from its worker)."""

    name = CHANNEL

    def __init__(self, config: TelegramConfig, hub: TelegramHub, records: TelegramRecords, bot: Bot | None = None):
        self.config = config
        self._hub = hub
        self._records = records
        timeout = float(config.api_timeout_seconds)
        self.bot = bot or Bot(
            config.token,
            base_url=config.api_base_url,
            request=HTTPXRequest(
                connection_pool_size=32,
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
                pool_timeout=timeout,
            ),
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._named: set[str] = set()

    async def start(self) -> None:
        """Check the token with getMe; an unreachable Telegram is logged, not fatal (sends retry it)."""
        try:
            await self.bot.initialize()
            log.info("Telegram bot @%s ready", self.bot.username)
        except TelegramError as error:
            log.error("Telegram getMe failed (%s); replies will be tried anyway", error)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            if not task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(task), 5)
                except Exception:
                    pass
        try:
            await self.bot.shutdown()
        except Exception:
            pass

    def secret_ok(self, header: str | None) -> bool:
        expected = self.config.secret_token.encode("utf-8")
        return bool(expected) and hmac.compare_digest((header or "").encode("utf-8"), expected)

    async def receive(self, secret: str | None, body: bytes) -> Reply:
        """One webhook request: check, parse, persist (answered once committed)."""
        if not self.secret_ok(secret):
            return Reply(403, {"ok": False, "reason": "密钥校验失败。", "code": "bad_secret"})
        try:
            data = json.loads(body.decode("utf-8"))
            parsed = parse_update(data, self.bot)
        except (ValueError, UnicodeDecodeError):
            return Reply(400, {"ok": False, "reason": "请求内容不是有效的 Telegram 更新。", "code": "bad_update"})
        if parsed.kind == "ignore":
            if parsed.callback_id:
                self._spawn(self._answer_callback(parsed.callback_id))
            return Reply(200)
        if parsed.kind == "unsupported":
            self._spawn(self._send_plain(parsed.chat_id, self.config.unsupported_reply))
            return Reply(200)
        if parsed.kind == "start":
            await self._start(parsed)
            return Reply(200)
        if parsed.kind == "button":
            self._spawn(self._answer_callback(parsed.callback_id))
        inbound = InboundMessage(
            CHANNEL,
            parsed.chat_id,
            parsed.text,
            channel_message_id=parsed.dedupe_id,
            kind="text" if parsed.kind == "button" else parsed.kind,
            meta=parsed.meta,
        )
        try:
            await self._until_committed(inbound)
        except Exception:
            log.exception("Telegram update %s could not be stored", parsed.update_id)
            return Reply(500, {"ok": False, "reason": "系统繁忙，请稍后重试。", "code": "server"})
        self._spawn(self._remember_name(parsed))
        return Reply(200)

    async def _start(self, parsed: Parsed) -> None:
        conversation = await self._hub.open_conversation(CHANNEL, parsed.chat_id)
        is_new = await self._records.note(
            conversation.id, NOTES["start"], {"kind": "start", **parsed.meta}, channel_message_id=parsed.dedupe_id
        )
        if not is_new:
            return
        await self._remember_name(parsed, conversation.citizen_id)
        if self.config.welcome:
            await self._hub.say(conversation, "bot", self.config.welcome, sender_name="智能客服")

    async def _remember_name(self, parsed: Parsed, citizen_id: int | None = None) -> None:
        if not parsed.name or parsed.chat_id in self._named:
            return
        try:
            if citizen_id is None:
                citizen_id = (await self._hub.open_conversation(CHANNEL, parsed.chat_id)).citizen_id
            await self._records.set_name(citizen_id, parsed.name)
            self._named.add(parsed.chat_id)
        except Exception:
            log.exception("could not keep the Telegram user's name")

    async def _until_committed(self, inbound: InboundMessage) -> Any:
        committed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def ack(message: Any) -> None:
            if not committed.done():
                committed.set_result(message)

        task = self._spawn(self._hub.on_inbound(inbound, ack))
        done, _ = await asyncio.wait({committed, task}, timeout=ACK_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        if committed.done():
            return committed.result()
        if task in done:
            task.result()
        raise TimeoutError("not committed in time")

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Telegram background work failed", exc_info=task.exception())

    async def _answer_callback(self, callback_id: str) -> None:
        try:
            await self.bot.answer_callback_query(callback_id)
        except TelegramError as error:
            log.warning("answerCallbackQuery failed: %s", error)

    async def _send_plain(self, chat_id: str, text: str) -> None:
        try:
            await self.bot.send_message(chat_id=int(chat_id), text=text)
        except (TelegramError, ValueError) as error:
            log.warning("Telegram sendMessage to %s failed: %s", chat_id, error)

    async def send(self, channel_user_id: str, message: OutboundMessage) -> None:
        """A bot, agent or system message to the citizen; a failure becomes a note the agent sees."""
        text = compact_text(message) or ""  # a KB answer's short form when it has one
        if message.sender == "agent":
            text = f"{message.sender_name or '人工客服'}：{text}"
        markup = buttons_markup(message.meta or {})
        parts = chunks(text)
        try:
            chat_id = int(channel_user_id)
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                await self.bot.send_message(chat_id=chat_id, text=part, reply_markup=markup if last else None)
        except (TelegramError, ValueError) as error:
            log.warning("Telegram delivery to %s failed: %s", channel_user_id, error)
            reason = getattr(error, "message", None) or str(error)
            try:
                await self._records.note(
                    message.conversation_id,
                    NOTES["delivery"].format(reason=reason),
                    {"delivery_error": type(error).__name__, "reason": reason, "message_id": message.message_id},
                )
            except Exception:
                log.exception("could not record a Telegram delivery failure")

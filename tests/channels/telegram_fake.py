"""A local stand-in for Telegram's Bot API, and the updates Telegram's servers would POST to us.

`FakeTelegram` serves `POST /bot<token>/<method>` on a free loopback port (stdlib, in a thread)
for the methods the hub uses — `getMe`, `sendMessage`, `sendChatAction`, `answerCallbackQuery`,
`setWebhook`, `deleteWebhook`, `getWebhookInfo` — with the Bot API's real envelopes:
`{"ok": true, "result": ...}` and `{"ok": false, "error_code": n, "description": "..."}`
(401 Unauthorized for a wrong token, 404 Not Found for an unknown method, 400 "Bad Request:
chat not found" / "Bad Request: message text is empty", 403 "Forbidden: bot was blocked by the
user"). Parameters arrive as python-telegram-bot sends them: form fields whose non-string values
are JSON-encoded (or a JSON body).

Results and updates are built with python-telegram-bot's own classes (`telegram.Message`,
`telegram.Update`, ... `.to_dict()`), so their shapes are the library's (and Telegram's).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    PhotoSize,
    Update,
    User,
    WebhookInfo,
)

from tests.fake_http import FakeRasa, FakeServer  # noqa: F401 (FakeRasa: re-exported)

TOKEN = "123456789:AAF-fake-token-for-tests_0123456789ab"
SECRET = "zwkf-telegram-secret_42"
BOT_USER = User(
    id=123456789,
    is_bot=True,
    first_name="政务服务助手",
    username="zwkf_test_bot",
    can_join_groups=False,
    can_read_all_group_messages=False,
    supports_inline_queries=False,
)

_update_ids = itertools.count(int(time.time()) % 1_000_000 * 100)
_message_ids = itertools.count(1000)


def next_update_id() -> int:
    return next(_update_ids)


def citizen(user_id: int, first_name: str = "Wei", last_name: str | None = "Zhang") -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, last_name=last_name, language_code="zh-hans")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def private_chat(user: User) -> Chat:
    return Chat(id=user.id, type=Chat.PRIVATE, first_name=user.first_name, last_name=user.last_name)


def text_update(user: User, text: str, update_id: int | None = None) -> dict[str, Any]:
    entities = None
    if text.startswith("/"):
        command = text.split()[0]
        entities = [MessageEntity(type=MessageEntity.BOT_COMMAND, offset=0, length=len(command))]
    message = Message(
        message_id=next(_message_ids),
        date=_now(),
        chat=private_chat(user),
        from_user=user,
        text=text,
        entities=entities,
    )
    return Update(update_id=update_id or next_update_id(), message=message).to_dict()


def photo_update(user: User, caption: str | None = None, update_id: int | None = None) -> dict[str, Any]:
    unique = f"AQAD{next(_message_ids)}"
    sizes = [
        PhotoSize(
            file_id=f"AgACAgUAAxkBAAI{unique}-s", file_unique_id=f"{unique}s", width=90, height=67, file_size=1290
        ),
        PhotoSize(
            file_id=f"AgACAgUAAxkBAAI{unique}-m", file_unique_id=f"{unique}m", width=320, height=240, file_size=15833
        ),
        PhotoSize(
            file_id=f"AgACAgUAAxkBAAI{unique}-x", file_unique_id=f"{unique}x", width=1280, height=960, file_size=128554
        ),
    ]
    message = Message(
        message_id=next(_message_ids),
        date=_now(),
        chat=private_chat(user),
        from_user=user,
        photo=sizes,
        caption=caption,
    )
    return Update(update_id=update_id or next_update_id(), message=message).to_dict()


def sticker_like_update(user: User) -> dict[str, Any]:
    """A message the hub does not take (here: a location)."""
    from telegram import Location

    message = Message(
        message_id=next(_message_ids),
        date=_now(),
        chat=private_chat(user),
        from_user=user,
        location=Location(longitude=103.4, latitude=24.4),
    )
    return Update(update_id=next_update_id(), message=message).to_dict()


def button_update(user: User, title: str, payload: str) -> dict[str, Any]:
    """The citizen pressed an inline button of an earlier bot message."""
    shown = Message(
        message_id=next(_message_ids),
        date=_now(),
        chat=private_chat(user),
        from_user=BOT_USER,
        text="请选择：",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(title, callback_data=payload)]]),
    )
    query = CallbackQuery(
        id=str(next(_message_ids) * 7919), from_user=user, chat_instance="-1234567890", data=payload, message=shown
    )
    return Update(update_id=next_update_id(), callback_query=query).to_dict()


STRING_PARAMS = {"text", "parse_mode", "url", "secret_token", "callback_query_id", "action", "ip_address"}


def _decode_params(content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        return json.loads(body or b"{}")
    out: dict[str, Any] = {}
    for key, values in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
        value: Any = values[-1]
        if key not in STRING_PARAMS:
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


@dataclass
class FakeTelegram:
    token: str = TOKEN
    sent: list[dict[str, Any]] = field(default_factory=list)  # sendMessage parameters, in order
    calls: list[tuple[str, int]] = field(default_factory=list)  # (method, HTTP status)
    webhook: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._blocked: set[int] = set()
        self._server: FakeServer | None = None

    # -- switches and views ----------------------------------------------------------------

    def block(self, chat_id: int) -> None:
        """The citizen blocked the bot: 403 for messages to them."""
        with self._lock:
            self._blocked.add(chat_id)

    def sent_to(self, chat_id: int | str) -> list[str]:
        with self._lock:
            return [str(m.get("text")) for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    def messages_to(self, chat_id: int | str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    def called(self, method: str) -> int:
        with self._lock:
            return sum(1 for name, _status in self.calls if name == method)

    # -- server ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What python-telegram-bot takes as `base_url` (it appends the token)."""
        return self.url + "/bot"

    def start(self) -> FakeTelegram:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return None

            def _reply(self, method: str, status: int, payload: dict[str, Any]) -> None:
                with fake._lock:
                    fake.calls.append((method, status))
                body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, method: str, status: int, description: str) -> None:
                self._reply(method, status, {"ok": False, "error_code": status, "description": description})

            def do_GET(self) -> None:  # noqa: N802
                self.do_POST()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                prefix, _, method = path.rpartition("/")
                if not prefix.startswith("/bot"):
                    return self._error(method, 404, "Not Found")
                if prefix[len("/bot") :] != fake.token:
                    return self._error(method, 401, "Unauthorized")
                try:
                    params = _decode_params(self.headers.get("Content-Type", ""), body)
                except ValueError:
                    return self._error(method, 400, "Bad Request: can't parse request")
                handler = getattr(fake, f"_api_{method}", None)
                if handler is None:
                    return self._error(method, 404, "Not Found")
                status, payload = handler(params)
                self._reply(method, status, payload)

        self._server = FakeServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- Bot API methods ---------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"ok": True, "result": result}

    @staticmethod
    def _fail(status: int, description: str) -> tuple[int, dict[str, Any]]:
        return status, {"ok": False, "error_code": status, "description": description}

    def _api_getMe(self, _params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        return self._ok(BOT_USER.to_dict())

    def _chat_id(self, params: dict[str, Any]) -> int | None:
        try:
            return int(params.get("chat_id"))
        except (TypeError, ValueError):
            return None

    def _api_sendMessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        chat_id = self._chat_id(params)
        if chat_id is None or chat_id <= 0:
            return self._fail(400, "Bad Request: chat not found")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return self._fail(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._fail(400, "Bad Request: message is too long")
        with self._lock:
            if chat_id in self._blocked:
                return self._fail(403, "Forbidden: bot was blocked by the user")
            self.sent.append(dict(params))
        markup = params.get("reply_markup")
        message = Message(
            message_id=next(_message_ids),
            date=_now(),
            chat=Chat(id=chat_id, type=Chat.PRIVATE),
            from_user=BOT_USER,
            text=text,
            reply_markup=InlineKeyboardMarkup.de_json(markup, None) if isinstance(markup, dict) else None,
        )
        return self._ok(message.to_dict())

    def _api_sendChatAction(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        if self._chat_id(params) is None:
            return self._fail(400, "Bad Request: chat not found")
        return self._ok(True)

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        if not params.get("callback_query_id"):
            return self._fail(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return self._ok(True)

    def _api_setWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            return self._fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        with self._lock:
            self.webhook = dict(params)
        description = "Webhook was set" if url else "Webhook is already deleted"
        return 200, {"ok": True, "result": True, "description": description}

    def _api_deleteWebhook(self, _params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        with self._lock:
            self.webhook = {}
        return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}

    def _api_getWebhookInfo(self, _params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        with self._lock:
            url = str(self.webhook.get("url") or "")
            allowed = self.webhook.get("allowed_updates")
        info = WebhookInfo(url=url, has_custom_certificate=False, pending_update_count=0, allowed_updates=allowed)
        return self._ok(info.to_dict())


# ------------------------------------------------------------------------------ a fake Rasa


@dataclass
class ChannelHub:
    """Hub worker processes with their own database (seeded with the demo accounts, no KB)."""

    urls: list[str]
    database_url: str
    prefix: str
    processes: list[Any]

    @property
    def url(self) -> str:
        return self.urls[0]


def start_channel_hubs(tmp: Any, env: dict[str, str], *, workers: int = 1, log_name: str = "channel") -> ChannelHub:
    """Migrate and seed a fresh SQLite database (or PostgreSQL with TEST_SYSTEM_DB=postgresql is
    not supported here: these are channel tests) and start `workers` hub processes with `env`."""
    import asyncio
    from pathlib import Path

    from core.config import load_settings
    from core.migrate import upgrade
    from hub.seed import seed
    from tests.support import ROOT, TEST_REDIS_URL, free_port, start_hub, stop_process, unique_prefix

    tmp = Path(tmp)
    database_url = f"sqlite:///{tmp / 'hub.db'}"
    upgrade(database_url)
    prefix = unique_prefix()
    empty_kb = tmp / "empty-kb.jsonl"
    empty_kb.write_text("", encoding="utf-8")
    base = load_settings().with_overrides(
        {"storage.database_url": database_url, "storage.redis_url": TEST_REDIS_URL, "storage.redis_key_prefix": prefix}
    )
    asyncio.run(seed(base, kb_file=empty_kb))
    common = {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix}
    processes, urls = [], []
    try:
        for index in range(workers):
            port = free_port()
            processes.append(start_hub({**common, **env}, port, ROOT / "var" / "test-logs" / f"{log_name}{index}.log"))
            urls.append(f"http://127.0.0.1:{port}")
    except BaseException:
        for process in processes:
            stop_process(process)
        raise
    return ChannelHub(urls, database_url, prefix, processes)


def stop_channel_hubs(hubs: ChannelHub) -> None:
    from tests.support import stop_process

    for process in hubs.processes:
        stop_process(process)

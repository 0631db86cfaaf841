"""A local stand-in for WeChat: its API server, its signed pushes, and a small fake Rasa.

`FakeWeChat` serves `/cgi-bin/token`, `/cgi-bin/message/custom/send`, `/cgi-bin/user/info`
and `/cgi-bin/menu/create` on a free loopback port (stdlib, in a thread) with WeChat's real
error codes: 40013 (bad appid), 40001 (invalid token), 42001 (expired token), 45015
(48-hour window closed), -1 (system busy). Switches expire tokens, close a citizen's window
or make the next calls busy. `GET /cgi-bin/media/get` answers a file added with `add_media`
as WeChat does (the bytes, with Content-Type and Content-disposition) and an unknown
media_id with 40007 (JSON in a text/plain body, as WeChat sends its media errors).

`Platform` builds the requests WeChat's servers send to ours: signatures computed as
`wechatpy.utils.check_signature` checks them, safe-mode bodies encrypted with
`wechatpy.crypto.WeChatCrypto`.
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner, check_signature

from tests.fake_http import FakeRasa, FakeServer, JsonHandler, serve  # noqa: F401 (FakeRasa: re-exported)

APP_ID = "wx1234567890abcdef"
APP_SECRET = "s3cr3t-for-tests"
TOKEN = "zwkf_test_token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
ACCOUNT = "gh_0123456789ab"


@dataclass
class FakeWeChat:
    """WeChat's API server, in-process. All state is guarded by one lock (server threads)."""

    token_ttl: int = 7200
    sent: list[dict[str, Any]] = field(default_factory=list)
    menus: list[dict[str, Any]] = field(default_factory=list)
    nicknames: dict[str, str] = field(default_factory=dict)
    unionids: dict[str, str] = field(default_factory=dict)
    token_fetches: int = 0
    calls: list[tuple[str, int]] = field(default_factory=list)  # (path, errcode)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media_id -> (file, Content-Type)
    media_delay: float = 0.0  # seconds `/cgi-bin/media/get` takes to answer

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # token -> "ok" / "expired" / "invalid"
        self._closed: set[str] = set()
        self._busy = 0
        self._delay = 0.0
        self._server: FakeServer | None = None

    # -- switches --------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: "expired" for token in self._tokens}

    def invalidate_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: "invalid" for token in self._tokens}

    def close_window(self, openid: str) -> None:
        """The citizen last wrote more than 48 hours ago: 45015 for customer-service messages."""
        with self._lock:
            self._closed.add(openid)

    def add_media(self, media_id: str, data: bytes, content_type: str) -> None:
        """A file a citizen sent (an image, a voice message) that `/cgi-bin/media/get` serves."""
        with self._lock:
            self.media[media_id] = (data, content_type)

    def busy(self, calls: int) -> None:
        """The next `calls` API calls answer -1 (system busy)."""
        with self._lock:
            self._busy = calls

    def sent_to(self, openid: str) -> list[str]:
        with self._lock:
            return [m["text"]["content"] for m in self.sent if m.get("touser") == openid]

    # -- server ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeWeChat:
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

        self._server, _thread = serve(Handler)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: JsonHandler, method: str) -> None:
        parsed = urllib.parse.urlparse(request.path)
        query = {key: values[0] for key, values in urllib.parse.parse_qs(parsed.query).items()}
        body = request._body()
        payload = self._answer(parsed.path, method, query, body)
        with self._lock:
            self.calls.append((parsed.path, int(payload.get("errcode") or 0)))
        if path_is_media(parsed.path):
            _media_answer(request, payload, query.get("media_id", ""))
            return
        request._json(payload)

    def _answer(self, path: str, method: str, query: dict[str, str], body: bytes) -> dict[str, Any]:
        if path == "/cgi-bin/token":
            if query.get("appid") != APP_ID:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if query.get("secret") != APP_SECRET:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            with self._lock:
                self.token_fetches += 1
                token = f"TOKEN_{self.token_fetches}_" + "".join(random.choices(string.ascii_letters, k=16))
                self._tokens[token] = "ok"
            return {"access_token": token, "expires_in": self.token_ttl}
        with self._lock:
            if self._busy > 0:
                self._busy -= 1
                return {"errcode": -1, "errmsg": "system error"}
            state = self._tokens.get(query.get("access_token", ""))
        if state is None or state == "invalid":
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if state == "expired":
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if path == "/cgi-bin/message/custom/send" and method == "POST":
            try:
                message = json.loads(body.decode("utf-8"))
            except ValueError:
                return {"errcode": 47001, "errmsg": "data format error"}
            with self._lock:
                if message.get("touser") in self._closed:
                    return {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
                self.sent.append(message)
            return {"errcode": 0, "errmsg": "ok"}
        if path_is_media(path) and method == "GET":
            with self._lock:
                found, delay = self.media.get(query.get("media_id", "")), self.media_delay
            time.sleep(delay)
            if found is None:
                return {"errcode": 40007, "errmsg": "invalid media_id"}
            return {"errcode": 0, "file": found}
        if path == "/cgi-bin/user/info":
            openid = query.get("openid", "")
            info: dict[str, Any] = {"subscribe": 1, "openid": openid, "nickname": self.nicknames.get(openid, "")}
            if openid in self.unionids:
                info["unionid"] = self.unionids[openid]
            return info
        if path == "/cgi-bin/menu/create" and method == "POST":
            with self._lock:
                self.menus.append(json.loads(body.decode("utf-8")))
            return {"errcode": 0, "errmsg": "ok"}
        return {"errcode": 40066, "errmsg": "invalid url"}


def path_is_media(path: str) -> bool:
    return path == "/cgi-bin/media/get"


def _media_answer(request: JsonHandler, payload: dict[str, Any], media_id: str) -> None:
    """`/cgi-bin/media/get`'s answer: the file as a download, or the error as JSON in text/plain."""
    if "file" in payload:
        data, content_type = payload["file"]
        ext = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "audio/amr": "amr"}.get(content_type, "bin")
        headers = {
            "Content-Type": content_type,
            "Content-disposition": f'attachment; filename="{media_id}.{ext}"',
            "Cache-Control": "no-cache, must-revalidate",
        }
    else:
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "text/plain"}
    try:
        request.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(data))}.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the hub gave up waiting (media_delay)
        request.close_connection = True


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, *extra)
    return signer.signature


@dataclass
class Platform:
    """Builds what WeChat's servers send to our server URL."""

    token: str = TOKEN
    aes_key: str = AES_KEY
    app_id: str = APP_ID
    account: str = ACCOUNT

    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.app_id)

    def query(self, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or "".join(random.choices(string.digits, k=10))
        sig = signature(self.token, timestamp, nonce)
        check_signature(self.token, sig, timestamp, nonce)  # the platform's own check, for certainty
        return {"signature": sig, "timestamp": timestamp, "nonce": nonce}

    def verification(self, echostr: str = "echo_1234567890") -> dict[str, str]:
        return {**self.query(), "echostr": echostr}

    def push(self, xml: str, mode: str) -> tuple[dict[str, str], bytes]:
        """(query string, body) for one push in plaintext, compatible or safe mode."""
        query = self.query()
        if mode == "plaintext":
            return query, xml.encode("utf-8")
        encrypted = self.crypto().encrypt_message(xml, query["nonce"], query["timestamp"])
        fields = _fields(encrypted)
        query.update(encrypt_type="aes", msg_signature=fields["MsgSignature"], openid="o" + "x" * 27)
        if mode == "compatible":
            # compatible mode: the plaintext fields and the ciphertext travel together
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>")
        else:
            body = (
                f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
                f"<Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>"
            )
        return query, body.encode("utf-8")

    def encrypted_raw(self, inner: str) -> tuple[dict[str, str], bytes]:
        """A safe-mode push whose decrypted content is `inner`, whatever it is (for fuzzing)."""
        return self.push(inner, "safe")

    def open_reply(self, body: str, query: dict[str, str]) -> dict[str, str]:
        """Read our passive reply as WeChat would (decrypting it in the encrypted modes)."""
        fields = _fields(body)
        if "Encrypt" in fields:
            inner = self.crypto().decrypt_message(body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
            assert fields["Nonce"] == query["nonce"]
            return _fields(inner)
        return fields


def _fields(xml: str) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    return {child.tag: child.text or "" for child in root}


_MSG_ID = [int(time.time() * 1000) * 1000 + random.randint(0, 999)]


def next_msg_id() -> str:
    _MSG_ID[0] += 1
    return str(_MSG_ID[0])


def openid() -> str:
    return "o" + "".join(random.choices(string.ascii_letters + string.digits + "_-", k=27))


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(kind: str, user: str, *, msg_id: str | None = None, created: int | None = None, **fields: str) -> str:
    """A push as WeChat sends it: `kind` is a MsgType; for events pass Event=... (and EventKey=...)."""
    created = created or int(time.time())
    parts = [
        f"<ToUserName>{cdata(ACCOUNT)}</ToUserName>",
        f"<FromUserName>{cdata(user)}</FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        f"<MsgType>{cdata(kind)}</MsgType>",
    ]
    for name, value in fields.items():
        parts.append(f"<{name}>{cdata(value) if not value.replace('.', '').isdigit() else value}</{name}>")
    if kind != "event":
        parts.append(f"<MsgId>{msg_id or next_msg_id()}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


SAMPLES: dict[str, dict[str, str]] = {
    "text": {"Content": "居住证怎么办理"},
    "voice": {"MediaId": "media_voice_1", "Format": "amr", "Recognition": "公积金怎么提取"},
    "image": {"PicUrl": "http://mmbiz.qpic.cn/x.jpg", "MediaId": "media_image_1"},
    "location": {"Location_X": "24.39", "Location_Y": "103.41", "Scale": "15", "Label": "弥勒市政务服务中心"},
    "link": {"Title": "办事指南", "Description": "一篇文章", "Url": "https://example.org/a"},
}


def raw_request(host: str, port: int, path: str, query: dict[str, str], body: bytes) -> bytes:
    """One whole HTTP/1.1 keep-alive POST as bytes (the bench builds every push's ahead of time)."""
    head = (
        f"POST {path}?{urllib.parse.urlencode(query)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _head_fields(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, connection: close) of a response head ending in a blank line."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    return status, length, close


class RawHttp:
    """A lean HTTP/1.1 keep-alive client over asyncio streams (loopback tests and the bench:
    httpx's per-request CPU would otherwise dominate on a small machine)."""

    def __init__(self, base_url: str) -> None:
        parsed = urllib.parse.urlparse(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._reader: Any = None
        self._writer: Any = None

    async def _connect(self) -> None:
        import asyncio

        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    def request(self, path: str, query: dict[str, str], body: bytes) -> bytes:
        return raw_request(self.host, self.port, path, query, body)

    async def post(self, path: str, query: dict[str, str], body: bytes) -> tuple[int, bytes]:
        return await self.send(self.request(path, query, body))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send a request built by `request` (one write) and read the response."""
        for attempt in range(2):
            if self._writer is None:
                await self._connect()
            try:
                self._writer.write(request)
                return await self._read()
            except (ConnectionError, OSError, ValueError, EOFError):  # EOFError: IncompleteReadError
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _read(self) -> tuple[int, bytes]:
        head = await self._reader.readuntil(b"\r\n\r\n")
        status, length, close = _head_fields(head)
        body = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except Exception:
                pass
        self._reader = self._writer = None


async def serve_lean_rasa(delay_seconds: float = 0.0, slow_seconds: float = 1.5) -> Any:
    """`FakeRasa`'s replies from an asyncio server (the bench's stand-in for Rasa in a process of
    its own: a threaded stdlib server costs the shared cores more than the hub's own work).
    Only what the hub sends: `POST /webhooks/rest/webhook` with a JSON body; any GET answers the
    status. Returns the started server (its port: `server.sockets[0].getsockname()[1]`)."""
    import asyncio

    replies = FakeRasa(slow_seconds=slow_seconds, delay_seconds=delay_seconds).replies

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method = head.split(b" ", 1)[0]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                data = json.loads(await reader.readexactly(length) or b"{}") if length else {}
                if method == b"GET":
                    status, payload = 200, {"model_file": "fake.tar.gz"}
                else:
                    text = str(data.get("message", ""))
                    pause = slow_seconds if "慢" in text else delay_seconds
                    if pause:
                        await asyncio.sleep(pause)
                    status, payload = replies(text, data.get("sender"))
                body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                writer.write(
                    f"HTTP/1.1 {status} OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n".encode("latin-1") + body
                )
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)

"""A lean HTTP/1.1 keep-alive transport for httpx, for the hub's calls to its own Rasa server.

httpx's default transport (httpcore) costs about 1 ms of CPU per request on a small machine,
as much as the rest of a WeChat push put together; this one writes the request in one go and
reads the head in one go (CRLF line ends, as HTTP/1.1 requires) and a Content-Length or chunked
body over a pooled asyncio stream (about 0.1 ms).
It is meant for a plain-HTTP service on the local network that answers with small bodies (no
TLS, no proxies, no HTTP/2, no compression). Idle connections are dropped after
`IDLE_SECONDS` (below the 5 s keep-alive of the Sanic inside Rasa 3.6), and never reused once
the server has closed them, so a request is not sent on a connection about to be closed.

`LeanClient` is an httpx.AsyncClient whose `post(path, json=...)` goes straight to this
transport: httpx's client layer (URL merging, cookies, auth and redirect handling, event hooks)
costs about as much again as the transport, and a JSON POST to a local service needs none of it.
Anything else it is asked goes through httpx as usual.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

IDLE_SECONDS = 4.0
MAX_IDLE = 32
MAX_HEADER_LINES = 100
SKIP_HEADERS = frozenset({b"accept-encoding", b"connection", b"transfer-encoding"})

_Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class KeepAliveTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[tuple[_Stream, float]]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            raise httpx.UnsupportedProtocol("only plain http", request=request)
        timeouts = request.extensions.get("timeout") or {}
        address = (request.url.host, request.url.port or 80)
        body = await request.aread()
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
        for name, value in request.headers.raw:
            if name.lower() not in SKIP_HEADERS:
                head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"connection: keep-alive\r\n\r\n")
        stream = self._take(address)
        try:
            if stream is None:
                stream = await self._connect(request, address, timeouts.get("connect"))
            reader, writer = stream
            writer.write(b"".join(head) + body)
            async with asyncio.timeout(timeouts.get("read")):
                status, headers, content, reusable = await self._read(reader, writer)
        except TimeoutError as error:
            self._close(stream)
            raise httpx.ReadTimeout(f"no answer from {address[0]}:{address[1]}", request=request) from error
        except (OSError, EOFError, ValueError) as error:  # EOFError: asyncio.IncompleteReadError
            self._close(stream)
            raise httpx.ReadError(f"{address[0]}:{address[1]}: {error!r}", request=request) from error
        except BaseException:
            self._close(stream)
            raise
        if reusable:
            self._give_back(address, stream)
        else:
            self._close(stream)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _connect(self, request: httpx.Request, address: tuple[str, int], seconds: float | None) -> _Stream:
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.open_connection(*address)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(f"connecting to {address[0]}:{address[1]}", request=request) from error
        except OSError as error:
            raise httpx.ConnectError(f"{address[0]}:{address[1]}: {error}", request=request) from error

    @staticmethod
    async def _read(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")  # status line and headers in one read
        except asyncio.LimitOverrunError as error:
            raise ValueError("response headers too long") from error
        status_line, *lines = head[:-4].split(b"\r\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP response: {status_line[:60]!r}")
        if len(lines) > MAX_HEADER_LINES:
            raise ValueError("too many headers")
        status = int(parts[1])
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        keep_alive = parts[0] == b"HTTP/1.1"
        for line in lines:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
                continue  # the body is handed over whole
            elif name == b"connection":
                keep_alive = value.lower() == b"keep-alive" or (keep_alive and value.lower() != b"close")
            headers.append((name, value))
        if chunked:
            pieces = []
            while True:
                size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                pieces.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(pieces)
            headers.append((b"content-length", str(len(content)).encode()))
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content, keep_alive = await reader.read(), False  # delimited by the server closing
        return status, headers, content, keep_alive

    def _take(self, address: tuple[str, int]) -> _Stream | None:
        idle = self._idle.get(address)
        now = time.monotonic()
        while idle:
            stream, since = idle.pop()
            reader, writer = stream
            if now - since < IDLE_SECONDS and not reader.at_eof() and not writer.is_closing():
                return stream
            writer.close()
        return None

    def _give_back(self, address: tuple[str, int], stream: _Stream) -> None:
        idle = self._idle.setdefault(address, [])
        if len(idle) >= MAX_IDLE:
            stream[1].close()
            return
        idle.append((stream, time.monotonic()))

    @staticmethod
    def _close(stream: _Stream | None) -> None:
        if stream is not None:
            stream[1].close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for (_reader, writer), _since in idle:
                writer.close()
        self._idle.clear()


class LeanClient(httpx.AsyncClient):
    """httpx.AsyncClient over a `KeepAliveTransport`, with a short path for `post(path, json=...)`."""

    def __init__(self, *, base_url: str, timeout: httpx.Timeout) -> None:
        self._lean = KeepAliveTransport()
        super().__init__(base_url=base_url, timeout=timeout, transport=self._lean)
        self._lean_base = base_url.rstrip("/")
        self._lean_timeout = timeout.as_dict()

    async def post(self, url: Any, *args: Any, json: Any = None, **kwargs: Any) -> httpx.Response:
        if args or kwargs or json is None or not isinstance(url, str) or not url.startswith("/"):
            return await super().post(url, *args, json=json, **kwargs)
        body = _json_body(json)
        request = httpx.Request(
            "POST", self._lean_base + url, content=body, extensions={"timeout": self._lean_timeout},
            headers={"content-type": "application/json", "accept": "*/*"},
        )
        return await self._lean.handle_async_request(request)


def _json_body(payload: Any) -> bytes:
    """The body httpx writes for `json=` (compact, UTF-8, non-ASCII kept)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")

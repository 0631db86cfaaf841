"""WeChat's server API: one access_token shared by every worker, and calls that survive its expiry.

The token lives in Redis (`<prefix>wechat:token:<app_id>`) with the time it should be
refreshed; one worker at a time refreshes it (a Redis lock) while the others keep using
the current one — WeChat keeps an old token valid for five minutes after a new fetch.
A call answered 40001/42001 invalidates the token it used, fetches a fresh one and is
retried once. Network errors, HTTP 5xx and -1 (system busy) are retried with backoff.
Citizens' images and voice files come from `GET /cgi-bin/media/get` (`get_media`), bounded by the caller.

wechatpy's own client is synchronous (requests), so calls go through httpx here; wechatpy
is used for everything else (signatures, AES, parsing, replies).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import redis.asyncio as aioredis

from channels.wechat.config import WeChatConfig
from core.redis_client import Keys

log = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}
MEDIA_MAX_BYTES = 10 * 1024 * 1024  # WeChat's own limit for images (voice: 2 MB)
T = TypeVar("T")
ERROR_TEXT = {
    -1: "微信系统繁忙",
    40001: "access_token 无效",
    40003: "openid 无效",
    40007: "media_id 无效或已过期",
    40013: "AppID 无效",
    40125: "AppSecret 无效",
    40164: "服务器 IP 不在公众号的 IP 白名单中",
    41001: "缺少 access_token",
    42001: "access_token 已过期",
    43004: "用户未关注公众号",
    45002: "消息内容过长",
    45015: "用户超过 48 小时未与公众号互动，客服消息无法送达",
    45047: "客服消息下行条数超过上限",
    48001: "公众号没有该接口的权限",
    "network": "无法连接微信服务器",
    "too_large": "文件超过大小上限",
}

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_INVALIDATE = """
local raw = redis.call('get', KEYS[1])
if raw and cjson.decode(raw)['token'] == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Media:
    """A file from `GET /cgi-bin/media/get` as WeChat sent it."""

    data: bytes
    content_type: str
    disposition: str  # e.g. `attachment; filename="<media_id>.jpg"`


class WeChatAPIError(RuntimeError):
    def __init__(self, code: int | str, message: str = "") -> None:
        super().__init__(f"WeChat API error {code}: {message}")
        self.code = code
        self.message = message

    @property
    def chinese(self) -> str:
        return ERROR_TEXT.get(self.code, f"微信接口返回错误 {self.code}")


class WeChatAPI:
    def __init__(
        self,
        config: WeChatConfig,
        redis: aioredis.Redis,
        keys: Keys,
        client: httpx.AsyncClient | None = None,
        *,
        backoff: tuple[float, ...] = (0.2, 0.6, 1.5),
    ) -> None:
        self.config = config
        self._redis = redis
        self._key = keys.wechat_token(config.app_id)
        self._lock = keys.wechat_token_lock(config.app_id)
        self._backoff = backoff
        self._client = client or httpx.AsyncClient(
            base_url=config.api_base_url.rstrip("/"),
            timeout=httpx.Timeout(float(config.api_timeout_seconds), connect=3.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )
        self.token_fetches = 0  # for tests and the bench

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the token -------------------------------------------------------------------------

    async def token(self) -> str:
        """The shared access_token, fetched or refreshed by one worker at a time."""
        deadline = time.monotonic() + 15
        while True:
            raw = await self._redis.get(self._key)
            cached = json.loads(raw) if raw else None
            if cached and time.time() < float(cached.get("refresh_at", 0)):
                return str(cached["token"])
            owner = uuid.uuid4().hex
            if await self._redis.set(self._lock, owner, nx=True, px=15_000):
                try:
                    return await self._fetch_token()
                finally:
                    await self._redis.eval(_RELEASE, 1, self._lock, owner)
            if cached:  # due for refresh, but someone else is on it: the current token still works
                return str(cached["token"])
            if time.monotonic() > deadline:
                raise WeChatAPIError("network", "timed out waiting for another worker's token fetch")
            await asyncio.sleep(0.05)

    async def invalidate(self, token: str) -> None:
        """Forget a token WeChat rejected (only if nobody has replaced it meanwhile)."""
        await self._redis.eval(_INVALIDATE, 1, self._key, token)

    async def _fetch_token(self) -> str:
        data = await self._request(
            "GET",
            "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.config.app_id, "secret": self.config.app_secret},
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatAPIError(int(data.get("errcode") or -1), str(data.get("errmsg") or "no access_token"))
        expires_in = int(data.get("expires_in") or 7200)
        self.token_fetches += 1
        # refresh ten minutes early (or half way for short-lived test tokens); keep until just before expiry
        early = min(600, expires_in // 2)
        value = json.dumps({"token": token, "refresh_at": time.time() + expires_in - early})
        await self._redis.set(self._key, value, ex=max(1, expires_in - 30))
        return token

    # -- calls -----------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One HTTP exchange with transient failures retried; returns WeChat's JSON (errcode 0 or absent)."""
        last: WeChatAPIError | None = None
        for attempt in range(len(self._backoff) + 1):
            if attempt:
                await asyncio.sleep(self._backoff[attempt - 1])
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.HTTPError as error:
                last = WeChatAPIError("network", str(error) or type(error).__name__)
                continue
            if response.status_code >= 500:
                last = WeChatAPIError("network", f"HTTP {response.status_code}")
                continue
            try:
                data = response.json()
            except ValueError:
                last = WeChatAPIError("network", f"non-JSON answer, HTTP {response.status_code}")
                continue
            if not isinstance(data, dict):
                raise WeChatAPIError("network", "unexpected answer")
            code = int(data.get("errcode") or 0)
            if code == -1:
                last = WeChatAPIError(-1, str(data.get("errmsg") or "system busy"))
                continue
            if code:
                raise WeChatAPIError(code, str(data.get("errmsg") or ""))
            return data
        assert last is not None
        raise last

    async def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """An authenticated call; a rejected token is refreshed and the call retried once."""

        async def attempt(token: str) -> dict[str, Any]:
            kwargs: dict[str, Any] = {"params": {**(params or {}), "access_token": token}}
            if body is not None:
                # WeChat wants UTF-8 JSON, not \\u escapes (they count against length limits)
                kwargs["content"] = json.dumps(body, ensure_ascii=False).encode("utf-8")
                kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
            return await self._request(method, path, **kwargs)

        return await self._with_token(attempt)

    async def _with_token(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        """Run `attempt` with the shared token; a rejected token is refreshed and `attempt` run once more."""
        for tries in range(2):
            token = await self.token()
            try:
                return await attempt(token)
            except WeChatAPIError as error:
                if error.code in TOKEN_ERRORS and tries == 0:
                    log.info("WeChat rejected the access_token (%s); refreshing", error.code)
                    await self.invalidate(token)
                    continue
                raise
        raise AssertionError("unreachable")

    async def send_text(self, openid: str, text: str) -> None:
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        await self.call("POST", "/cgi-bin/message/custom/send", body=body)

    async def user_info(self, openid: str) -> dict[str, Any]:
        return await self.call("GET", "/cgi-bin/user/info", params={"openid": openid, "lang": "zh_CN"})

    async def create_menu(self, menu: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/menu/create", body=menu)

    async def get_media(self, media_id: str, *, max_bytes: int = MEDIA_MAX_BYTES) -> Media:
        """A citizen's image or voice file (`GET /cgi-bin/media/get`; WeChat keeps it three days).

        The file comes as a binary body; an error as JSON (40007: invalid media_id). A rejected token is
        refreshed once, but nothing else is retried: the caller bounds the whole wait."""

        async def attempt(token: str) -> Media:
            params = {"access_token": token, "media_id": media_id}
            try:
                async with self._client.stream("GET", "/cgi-bin/media/get", params=params) as response:
                    if response.status_code >= 400:
                        raise WeChatAPIError("network", f"HTTP {response.status_code}")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise WeChatAPIError("too_large", f"more than {max_bytes} bytes")
                        chunks.append(chunk)
                    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    disposition = response.headers.get("content-disposition", "")
            except httpx.HTTPError as error:
                raise WeChatAPIError("network", str(error) or type(error).__name__) from error
            data = b"".join(chunks)
            if data[:1] == b"{" or content_type in ("application/json", "text/plain"):
                try:
                    answer = json.loads(data)
                except ValueError:
                    answer = None
                if isinstance(answer, dict) and answer.get("errcode"):
                    raise WeChatAPIError(int(answer["errcode"]), str(answer.get("errmsg") or ""))
                raise WeChatAPIError("network", "no file in the answer")
            if not data:
                raise WeChatAPIError("network", "empty file")
            return Media(data, content_type, disposition)

        return await self._with_token(attempt)

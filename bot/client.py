"""The hub's async client for the Rasa HTTP API.

One pooled httpx.AsyncClient per process: every citizen message goes through it, so
reusing connections matters. Failures surface as RasaUnavailable / RasaTimeout /
RasaError so callers can reply politely ("智能客服暂时不可用…") instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlencode

import httpx


class RasaError(RuntimeError):
    """Rasa answered, but not with what we asked for (HTTP error or bad JSON)."""


class RasaUnavailable(RasaError):
    """Rasa could not be reached (not started, crashed, wrong URL)."""


class RasaTimeout(RasaError):
    """Rasa did not answer in time (overloaded, or an action call hanging)."""


@dataclass(frozen=True)
class BotReply:
    """One bot message from the REST channel: text and/or buttons and/or a custom payload."""

    text: str | None = None
    buttons: list[dict[str, Any]] = field(default_factory=list)
    custom: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> BotReply:
        custom = item.get("custom")
        return cls(
            text=item.get("text"),
            buttons=list(item.get("buttons") or []),
            custom=custom if isinstance(custom, dict) else None,
        )


@dataclass(frozen=True)
class ParseResult:
    """The NLU result for one text: top intent (``nlu_fallback`` when unsure) and ranking."""

    intent: str
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)


class RasaClient:
    """Talk to one Rasa server (or a load balancer in front of several)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:5005",
        timeout: float = 15.0,
        client: httpx.AsyncClient | None = None,
        token: str | None = None,
    ) -> None:
        """``token``: the API token Rasa was started with (``rasa run --auth-token``); default the
        hub's own (core.config.Settings.rasa_token)."""
        self.base_url = base_url.rstrip("/")
        if token is None:
            from core.config import load_settings

            token = load_settings().rasa_token
        # Rasa checks it on its API (/model/parse, /status, trackers), not on the REST channel
        self._auth = "?" + urlencode({"token": token})
        self._client = client or httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=3.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        try:
            resp = await self._client.post(path, json=payload)
        except httpx.TimeoutException as exc:
            raise RasaTimeout(f"Rasa at {self.base_url} timed out on {path}") from exc
        except httpx.TransportError as exc:
            raise RasaUnavailable(f"Rasa at {self.base_url} unreachable: {exc}") from exc
        if resp.status_code >= 400:
            raise RasaError(f"Rasa {path} answered HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise RasaError(f"Rasa {path} answered non-JSON: {resp.text[:300]}") from exc

    async def send(self, sender_id: str, text: str, metadata: dict[str, Any] | None = None) -> list[BotReply]:
        """Send a citizen message; returns the bot's replies (custom actions included)."""
        payload: dict[str, Any] = {"sender": sender_id, "message": text}
        if metadata:
            payload["metadata"] = metadata
        data = await self._post("/webhooks/rest/webhook", payload)
        if not isinstance(data, list):
            raise RasaError(f"unexpected REST webhook answer: {data!r:.300}")
        return [BotReply.from_json(item) for item in data if isinstance(item, dict)]

    async def parse(self, text: str) -> ParseResult:
        """Classify a text without touching any conversation (no tracker, no actions)."""
        data = await self._post("/model/parse" + self._auth, {"text": text})
        intent = (data or {}).get("intent") or {}
        ranking = [(str(r.get("name")), float(r.get("confidence") or 0.0)) for r in data.get("intent_ranking") or []]
        return ParseResult(
            intent=str(intent.get("name") or ""),
            confidence=float(intent.get("confidence") or 0.0),
            ranking=ranking,
        )

    async def status(self) -> dict[str, Any]:
        """Rasa's /status: which model is loaded (for health pages)."""
        try:
            resp = await self._client.get("/status" + self._auth)
        except httpx.TimeoutException as exc:
            raise RasaTimeout(f"Rasa at {self.base_url} timed out on /status") from exc
        except httpx.TransportError as exc:
            raise RasaUnavailable(f"Rasa at {self.base_url} unreachable: {exc}") from exc
        if resp.status_code >= 400:
            raise RasaError(f"Rasa /status answered HTTP {resp.status_code}")
        return resp.json()

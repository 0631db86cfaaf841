"""Speech-to-text behind one small interface; the engine is chosen by `voice.asr`.

A recogniser is streamed while the caller speaks (so that little is left to do when they stop):
`start()` opens a stream, `feed()` takes 8 kHz 16-bit PCM as it arrives, `finish()` returns the text.

Engines:
- `none`: no speech recognition (the menu works by keys only); `finish()` returns "".
- `aliyun_nls`: Alibaba Cloud Intelligent Speech Interaction (智能语音交互), its one-sentence
  recognition (`SpeechRecognizer`) over its documented WebSocket protocol: JSON commands and
  events as text frames, audio as binary frames, the access token in the URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Protocol
from urllib.parse import urlencode

import websockets

log = logging.getLogger(__name__)

NLS_OK = 20000000


class AsrStream(Protocol):
    async def feed(self, pcm: bytes) -> None: ...

    async def finish(self) -> str: ...

    async def cancel(self) -> None: ...


class Asr(Protocol):
    name: str

    async def start(self) -> AsrStream: ...


class AsrError(Exception):
    """The recogniser failed (network, refused token, engine error): the caller hears the no-match prompt."""


class _Nothing:
    async def feed(self, pcm: bytes) -> None:
        return None

    async def finish(self) -> str:
        return ""

    async def cancel(self) -> None:
        return None


class NoAsr:
    name = "none"

    async def start(self) -> AsrStream:
        return _Nothing()


def _id() -> str:
    return uuid.uuid4().hex


class NlsStream:
    """One SpeechRecognizer task on its own WebSocket."""

    def __init__(self, socket: Any, task_id: str, appkey: str) -> None:
        self._ws = socket
        self._task_id = task_id
        self._appkey = appkey
        self._closed = False

    def header(self, name: str) -> dict[str, str]:
        return {
            "message_id": _id(), "task_id": self._task_id, "namespace": "SpeechRecognizer",
            "name": name, "appkey": self._appkey,
        }

    async def feed(self, pcm: bytes) -> None:
        if not self._closed and pcm:
            await self._ws.send(pcm)

    async def finish(self) -> str:
        try:
            await self._ws.send(json.dumps({"header": self.header("StopRecognition")}))
            while True:
                event = json.loads(await asyncio.wait_for(self._ws.recv(), 10))
                header = event.get("header", {})
                if header.get("name") == "RecognitionCompleted":
                    return str(event.get("payload", {}).get("result", ""))
                if header.get("name") == "TaskFailed":
                    raise AsrError(f"NLS task failed: {header.get('status')} {header.get('status_text')}")
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise AsrError(f"NLS: {exc}") from exc
        finally:
            await self.cancel()

    async def cancel(self) -> None:
        if not self._closed:
            self._closed = True
            await self._ws.close()


class AliyunNlsAsr:
    name = "aliyun_nls"

    def __init__(self, url: str, appkey: str, token: str, sample_rate: int = 8000) -> None:
        self.url = url
        self.appkey = appkey
        self.token = token
        self.sample_rate = sample_rate

    async def start(self) -> AsrStream:
        task_id = _id()
        try:
            socket = await websockets.connect(f"{self.url}?{urlencode({'token': self.token})}", open_timeout=5)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise AsrError(f"NLS connect: {exc}") from exc
        stream = NlsStream(socket, task_id, self.appkey)
        start = {
            "header": stream.header("StartRecognition"),
            "payload": {
                "format": "pcm", "sample_rate": self.sample_rate, "enable_intermediate_result": False,
                "enable_punctuation_prediction": True, "enable_inverse_text_normalization": True,
            },
        }
        try:
            await socket.send(json.dumps(start))
            event = json.loads(await asyncio.wait_for(socket.recv(), 5))
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            await stream.cancel()
            raise AsrError(f"NLS start: {exc}") from exc
        header = event.get("header", {})
        if header.get("name") != "RecognitionStarted" or int(header.get("status", 0)) != NLS_OK:
            await stream.cancel()
            raise AsrError(f"NLS refused: {header.get('status')} {header.get('status_text')}")
        return stream


def make_asr(name: str, engines: dict[str, dict[str, Any]]) -> Asr:
    if name in ("", "none"):
        return NoAsr()
    if name == "aliyun_nls":
        conf = engines.get("aliyun_nls", {})
        return AliyunNlsAsr(str(conf.get("url")), str(conf.get("appkey", "")), str(conf.get("token", "")))
    raise ValueError(f"unknown voice.asr engine {name!r}")

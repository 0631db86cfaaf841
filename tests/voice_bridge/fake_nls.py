"""A local stand-in for Alibaba Cloud NLS that speaks its real WebSocket protocol (SpeechRecognizer:
StartRecognition -> RecognitionStarted, binary PCM frames, StopRecognition -> RecognitionCompleted).

It cannot understand speech: it returns the transcript the test queued for the next utterance (what a
cloud engine would hear), and keeps what it received so tests can check the audio was really streamed
(its length and loudness) and the token and app key were sent."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import numpy as np
import websockets

from tests.support import free_port


@dataclass
class Utterance:
    token: str
    appkey: str
    sample_rate: int
    pcm: bytearray = field(default_factory=bytearray)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate

    @property
    def level(self) -> float:
        data = np.frombuffer(bytes(self.pcm[: len(self.pcm) // 2 * 2]), dtype="<i2")
        return float(np.abs(data.astype(np.int32)).mean()) if data.size else 0.0


class FakeNls:
    def __init__(self, token: str = "test-token", appkey: str = "test-appkey") -> None:
        self.port = free_port()
        self.token = token
        self.appkey = appkey
        self.transcripts: deque[str] = deque()
        self.utterances: list[Utterance] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._server = await websockets.serve(self._serve, "127.0.0.1", self.port)
            self._ready.set()
            await self._server.wait_closed()

        self._loop.run_until_complete(main())

    async def _serve(self, ws: websockets.ServerConnection) -> None:
        query = parse_qs(urlparse(ws.request.path).query)
        token = (query.get("token") or [""])[0]
        start = json.loads(await ws.recv())
        header = start["header"]
        task = header["task_id"]
        if token != self.token or header.get("appkey") != self.appkey:
            await ws.send(json.dumps({"header": {"namespace": "Default", "name": "TaskFailed", "task_id": task,
                                                 "status": 40000001, "status_text": "Gateway:ACCESS_DENIED"}}))
            return
        utterance = Utterance(token, header["appkey"], int(start["payload"]["sample_rate"]))
        self.utterances.append(utterance)
        await ws.send(json.dumps({"header": {"namespace": "SpeechRecognizer", "name": "RecognitionStarted",
                                             "task_id": task, "status": 20000000, "status_text": "Gateway:SUCCESS"}}))
        async for frame in ws:
            if isinstance(frame, bytes):
                utterance.pcm.extend(frame)
                continue
            if json.loads(frame)["header"]["name"] == "StopRecognition":
                text = self.transcripts.popleft() if self.transcripts else ""
                await ws.send(json.dumps({
                    "header": {"namespace": "SpeechRecognizer", "name": "RecognitionCompleted", "task_id": task,
                               "status": 20000000, "status_text": "Gateway:SUCCESS"},
                    "payload": {"result": text, "duration": int(utterance.seconds * 1000)},
                }))
                return

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._thread.join(5)

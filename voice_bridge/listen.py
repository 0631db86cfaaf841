"""What the caller does after a prompt: a key (RFC 4733), an utterance (endpointed by level and
streamed to the recogniser as it is spoken), or nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from voice_bridge.asr import Asr, AsrError, AsrStream
from voice_bridge.pcm import RATE, level
from voice_bridge.settings import VadConfig

log = logging.getLogger(__name__)


@dataclass
class Heard:
    kind: str  # key / speech / silence
    key: str = ""
    text: str = ""
    start_s: float = 0.0  # on the call's recording clock
    end_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # stage costs, ms


class Ear:
    """Fed every received PCM chunk; reports keys and utterances on one queue."""

    def __init__(self, asr: Asr, vad: VadConfig, clock: callable) -> None:  # type: ignore[valid-type]
        self.asr = asr
        self.vad = vad
        self.clock = clock
        self.events: asyncio.Queue[Heard] = asyncio.Queue()
        self.listening = False
        self.speaking = False
        self._silence_ms = 0.0
        self._speech_ms = 0.0
        self._utterance_start = 0.0
        self._last_voice_at = 0.0
        self._chunks: asyncio.Queue[bytes | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.on_speech_start: list[callable] = []  # type: ignore[valid-type]

    def key(self, digit: str) -> None:
        now = self.clock()
        self.events.put_nowait(Heard("key", key=digit, start_s=now, end_s=now))

    def audio(self, pcm: bytes) -> None:
        if not self.listening:
            return
        ms = len(pcm) / 2 / RATE * 1000
        loud = level(pcm) >= self.vad.speech_threshold
        if not self.speaking:
            if loud:
                self._speech_ms += ms
                if self._speech_ms >= 60:  # two frames of voice: not a click
                    self._begin(ms)
                    self._feed(pcm)
            else:
                self._speech_ms = 0.0
            return
        self._feed(pcm)
        if loud:
            self._silence_ms = 0.0
            self._last_voice_at = time.monotonic()
        else:
            self._silence_ms += ms
        too_long = self.clock() - self._utterance_start > self.vad.max_utterance_seconds
        if self._silence_ms >= self.vad.end_silence_ms or too_long:
            self._end()

    def _begin(self, ms: float) -> None:
        self.speaking = True
        self._silence_ms = 0.0
        self._last_voice_at = time.monotonic()
        self._utterance_start = self.clock() - self._speech_ms / 1000
        self._chunks = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._recognise(self._chunks, self._utterance_start))
        for callback in self.on_speech_start:
            callback()

    def _feed(self, pcm: bytes) -> None:
        if self._chunks is not None:
            self._chunks.put_nowait(pcm)

    def _end(self) -> None:
        self.speaking = False
        self._speech_ms = 0.0
        if self._chunks is not None:
            self._chunks.put_nowait(None)
            self._chunks = None

    async def _recognise(self, chunks: asyncio.Queue[bytes | None], start_s: float) -> None:
        stream: AsrStream | None = None
        failed = False
        try:
            stream = await self.asr.start()
        except AsrError as exc:
            log.warning("speech recognition unavailable: %s", exc)
            failed = True
        while True:
            chunk = await chunks.get()
            if chunk is None:
                break
            if stream is not None and not failed:
                try:
                    await stream.feed(chunk)
                except Exception as exc:
                    log.warning("speech recognition feed failed: %s", exc)
                    failed = True
        stopped_at = time.monotonic()
        voice_end = self._last_voice_at
        text = ""
        if stream is not None and not failed:
            try:
                text = (await stream.finish()).strip()
            except AsrError as exc:
                log.warning("speech recognition failed: %s", exc)
        elif stream is not None:
            with contextlib.suppress(Exception):
                await stream.cancel()
        done = time.monotonic()
        end_s = self.clock() - (done - voice_end)
        self.events.put_nowait(
            Heard(
                "speech", text=text, start_s=start_s, end_s=end_s,
                timings={"endpoint_ms": (stopped_at - voice_end) * 1000, "asr_ms": (done - stopped_at) * 1000,
                         "voice_end_monotonic": voice_end},
            )
        )

    async def next(self, wait_seconds: float) -> Heard:
        """The next key or utterance; silence when nothing starts within `wait_seconds` (an utterance
        under way is always waited for)."""
        self.listening = True
        deadline = time.monotonic() + wait_seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await asyncio.wait_for(self.events.get(), max(0.05, remaining))
            except TimeoutError:
                if self.speaking or (self._worker is not None and not self._worker.done()):
                    deadline = time.monotonic() + 1.0
                    continue
                now = self.clock()
                return Heard("silence", start_s=now, end_s=now)

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

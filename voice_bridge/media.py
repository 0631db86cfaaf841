"""One call leg's audio: what it receives goes to listeners (the recorder, the endpointer, a bridged
leg); what it sends comes from a play queue (prompts, music) or from a bridged leg.

All legs are driven by one clock (`MediaClock`) ticking every 20 ms, so that 30+ calls cost one
timer, not 30."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from voice_bridge.pcm import FRAME_BYTES, RATE

log = logging.getLogger(__name__)

# keep ~120 ms queued in the stack: a tick late by that much (a busy event loop) still never starves the
# line; barge-in flushes it, so only a bridge's delay grows by it
AHEAD_BYTES = FRAME_BYTES * 6


class Recorder:
    """Both sides of a call on the wall clock: left the citizen, right what the citizen heard."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.left = bytearray()
        self.right = bytearray()

    def now(self) -> float:
        return time.monotonic() - self.start

    def _put(self, side: bytearray, pcm: bytes) -> None:
        due = int(self.now() * RATE) * 2 - len(pcm)
        if len(side) < due:
            side.extend(bytes(due - len(side)))
        side.extend(pcm)

    def heard(self, pcm: bytes) -> None:
        self._put(self.left, pcm)

    def said(self, pcm: bytes) -> None:
        self._put(self.right, pcm)


class Playback:
    """One queued sound; `done` resolves True when it was played out, False when it was cut short."""

    def __init__(self, pcm: bytes, loop: bool = False) -> None:
        self.pcm = memoryview(pcm)
        self.loop = loop  # music: starts again at its end until stopped
        self.pos = 0
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[bool] = loop.create_future()
        self.started: asyncio.Future[float] = loop.create_future()  # when its first frame went out
        self.started_at: float | None = None

    def start(self) -> None:
        self.started_at = time.monotonic()
        if not self.started.done():
            self.started.set_result(self.started_at)

    def finish(self, played: bool) -> None:
        if not self.done.done():
            self.done.set_result(played)
        if not self.started.done():
            self.started.cancel()


class Leg:
    """A baresip call's audio, fed and drained on the clock's ticks."""

    def __init__(self, call: Any, name: str) -> None:
        self.call = call
        self.name = name
        self.listeners: list[Callable[[bytes], None]] = []
        self.queue: list[Playback] = []
        self.peer: Leg | None = None  # bridged: what the peer receives is sent here
        self.recorder: Recorder | None = None
        self._bridged = bytearray()
        self.alive = True
        self.first_audio_at: float | None = None

    def play(self, pcm: bytes, loop: bool = False) -> Playback:
        item = Playback(pcm, loop)
        self.queue.append(item)
        return item

    def stop_playback(self) -> None:
        """Barge-in: what is queued is dropped and what the stack holds is flushed."""
        for item in self.queue:
            item.finish(False)
        self.queue.clear()
        try:
            self.call.audio.flush_tx()
        except Exception:
            pass

    @property
    def playing(self) -> bool:
        return bool(self.queue)

    def bridge_in(self, pcm: bytes) -> None:
        self._bridged.extend(pcm)
        if len(self._bridged) > FRAME_BYTES * 25:  # never let a bridge lag more than half a second
            del self._bridged[: len(self._bridged) - FRAME_BYTES * 5]

    def tick(self) -> None:
        audio = self.call.audio
        try:
            received = audio.read(FRAME_BYTES * 10)
            if received:
                for listener in self.listeners:
                    listener(received)
                if self.recorder is not None:
                    self.recorder.heard(received)
                if self.peer is not None:
                    self.peer.bridge_in(received)
            info = audio.info()
            if not info.tx_ready:
                return
            room = AHEAD_BYTES - info.tx_buffered
            while room >= FRAME_BYTES:
                chunk = self._next_chunk()
                if not chunk:
                    break
                audio.write(chunk)
                if self.recorder is not None:
                    self.recorder.said(chunk)
                room -= len(chunk)
        except Exception as exc:  # AudioNotActive / AudioRestarted around a re-INVITE: next tick
            log.debug("leg %s audio: %s", self.name, exc)

    def _next_chunk(self) -> bytes:
        while self.queue:
            item = self.queue[0]
            if item.started_at is None:
                item.start()
                if self.first_audio_at is None:
                    self.first_audio_at = item.started_at
            chunk = bytes(item.pcm[item.pos : item.pos + FRAME_BYTES])
            item.pos += len(chunk)
            if item.pos >= len(item.pcm):
                if item.loop and len(item.pcm):
                    item.pos = 0
                else:
                    self.queue.pop(0)
                    item.finish(True)
            if chunk:
                return chunk.ljust(FRAME_BYTES, b"\0")
        if self._bridged:
            chunk = bytes(self._bridged[:FRAME_BYTES])
            del self._bridged[:FRAME_BYTES]
            return chunk.ljust(FRAME_BYTES, b"\0")
        return b""

    def close(self) -> None:
        self.alive = False
        for item in self.queue:
            item.finish(False)
        self.queue.clear()


class MediaClock:
    """The one 20 ms ticker for every leg; records how late each tick was (the jitter we add)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.legs: set[Leg] = set()
        self._task: asyncio.Task[None] | None = None
        self.lateness: list[float] = []

    def add(self, leg: Leg) -> None:
        self.legs.add(leg)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voice-media-clock")

    def remove(self, leg: Leg) -> None:
        self.legs.discard(leg)
        leg.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self.legs:
            due += self.interval
            for leg in list(self.legs):
                leg.tick()
            delay = due - loop.time()
            if delay < -0.2:  # far behind (a stalled loop): start again rather than burst
                due = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))
            late = loop.time() - due
            self.lateness.append(late)
            if len(self.lateness) > 50_000:  # the last ~17 minutes
                del self.lateness[:10_000]

    def stats(self, reset: bool = False) -> dict[str, float]:
        """How late the ticks were since the last reset (ms): what this process adds to RTP jitter."""
        late = sorted(self.lateness)
        if reset:
            self.lateness = []
        if not late:
            return {"ticks": 0, "late_p50_ms": 0.0, "late_p99_ms": 0.0, "late_max_ms": 0.0}
        pick = lambda q: round(late[min(len(late) - 1, int(q * (len(late) - 1)))] * 1000, 2)  # noqa: E731
        return {"ticks": len(late), "late_p50_ms": pick(0.5), "late_p99_ms": pick(0.99), "late_max_ms": pick(1.0)}

    async def aclose(self) -> None:
        for leg in list(self.legs):
            self.remove(leg)
        if self._task is not None:
            self._task.cancel()

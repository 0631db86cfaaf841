"""Calls out (click-to-call): ring the agent's phone first, then the citizen through the trunk, and
bridge the two. Recorded and kept like an inbound call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from core.models.base import utcnow
from voice_bridge.media import Leg, Recorder
from voice_bridge.pcm import stereo_wav
from voice_bridge.stack import on_closed

if TYPE_CHECKING:
    from voice_bridge.bridge import VoiceBridge

log = logging.getLogger(__name__)


class OutboundCall:
    def __init__(
        self, bridge: VoiceBridge, agent_id: int, number: str, citizen_id: int | None, call_id: str = ""
    ) -> None:
        self.bridge = bridge
        self.agent_id = agent_id
        self.number = number
        self.citizen_id = citizen_id
        self.id = call_id or str(uuid.uuid4())
        self.recorder = Recorder()
        self.ended = asyncio.Event()
        self.calls: list[Any] = []

    async def run(self) -> None:
        bridge = self.bridge
        started = utcnow()
        await bridge.records.create(
            self.id, "outbound", bridge.config.hotline_user, self.number, citizen_id=self.citizen_id,
            agent_id=self.agent_id, agent_ids=[str(self.agent_id)], started_at=started, ivr_path=["click_to_call"],
        )
        outcome, answered, legs = "failed", None, []
        try:
            uri = await bridge.records.extension(self.agent_id)
            if not uri:
                return
            agent = await bridge.stack.dial(uri)
            self.calls.append(agent)
            on_closed(agent, lambda _r: self.ended.set())
            await agent.wait_established(timeout=bridge.config.agent_ring_seconds)
            citizen = await bridge.stack.dial(bridge.stack.uri_for_number(self.number))
            self.calls.append(citizen)
            on_closed(citizen, lambda _r: self.ended.set())
            outcome = "no_answer"
            await citizen.wait_established(timeout=45)
            answered = time.monotonic()
            outcome = "answered"
            await bridge.records.update(self.id, answered_at=utcnow(), wait_seconds=0.0)
            citizen_leg, agent_leg = Leg(citizen, f"out:{self.id[:8]}"), Leg(agent, f"agent:{self.agent_id}")
            citizen_leg.recorder = self.recorder
            citizen_leg.peer, agent_leg.peer = agent_leg, citizen_leg
            legs = [citizen_leg, agent_leg]
            for leg in legs:
                bridge.clock.add(leg)
            await self.ended.wait()
        except Exception as exc:
            log.info("click-to-call %s to %s ended: %s", self.id, self.number, exc)
        finally:
            for leg in legs:
                bridge.clock.remove(leg)
            for call in self.calls:
                with contextlib.suppress(Exception):
                    await call.hangup()
            wav = stereo_wav(bytes(self.recorder.left), bytes(self.recorder.right))
            path = bridge.records.write_recording(self.id, started, wav) if answered else None
            await bridge.records.update(
                self.id, ended_at=utcnow(), outcome=outcome,
                talk_seconds=None if answered is None else round(time.monotonic() - answered, 2),
                recording_path=None if path is None else str(path),
                recording_seconds=round(len(self.recorder.left) / 16000, 2) if answered else None,
            )
            bridge.outbound.pop(self.id, None)

    async def hang_up(self) -> None:
        self.ended.set()

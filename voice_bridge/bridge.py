"""The call center in one object: the SIP stack, the calls in progress, the voice channel the
message path answers through, and the commands agents give from any worker (over the event bus)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels import OutboundMessage, compact_text
from core.events import Event, VoiceCommandEvent
from voice_bridge.asr import Asr, make_asr
from voice_bridge.handoff_adapter import StateChange, state_change
from voice_bridge.media import MediaClock
from voice_bridge.outbound import OutboundCall
from voice_bridge.ports import MessagePath
from voice_bridge.records import CallRecords
from voice_bridge.session import CallSession
from voice_bridge.settings import VoiceConfig
from voice_bridge.stack import SipStack
from voice_bridge.tts import Tts, make_tts

log = logging.getLogger(__name__)

COMMAND_EVENT = VoiceCommandEvent.kind  # bus event kind: core.events.VoiceCommandEvent


def spoken_text(message: OutboundMessage) -> str:
    """What the caller hears: the reply, then its quick replies read out (the bot's 您是想问 options,
    numbered so the caller can say one), since a call has no buttons."""
    titles = [str(b.get("title") or "") for b in (message.meta or {}).get("buttons") or [] if isinstance(b, dict)]
    return "\n".join([compact_text(message), *[t for t in titles if t]])


class VoiceChannel:
    """The `voice` output channel: a bot reply to a caller is spoken on their call."""

    name = "voice"

    def __init__(self, bridge: VoiceBridge) -> None:
        self.bridge = bridge

    async def send(self, channel_user_id: str, message: OutboundMessage) -> None:
        session = self.bridge.sessions.get(channel_user_id)
        if session is not None and message.sender == "bot":
            session.answer_said(spoken_text(message))


class VoiceBridge:
    def __init__(
        self, config: VoiceConfig, path: MessagePath, records: CallRecords,
        asr: Asr | None = None, tts: Tts | None = None,
    ) -> None:
        self.config = config
        self.path = path
        self.records = records
        self.asr = asr or make_asr(config.asr, config.engines)
        self.tts = tts or make_tts(config.tts, config.tts_cache_dir)
        self.stack = SipStack(config)
        self.clock = MediaClock()
        self.channel = VoiceChannel(self)
        self.sessions: dict[str, CallSession] = {}
        self.by_conversation: dict[str, CallSession] = {}
        self.outbound: dict[str, OutboundCall] = {}
        self.finished_turns: list[dict[str, float]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.running = False
        self.runner: asyncio.Task[None] | None = None  # the worker's start-and-keep-the-lock task

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a call failed", exc_info=task.exception())

    async def start(self) -> None:
        """Answer the hotline (and register it when a registrar is configured); prompts are synthesised
        now so that the first caller does not wait for them."""
        for text in (self.config.greeting, self.config.menu_prompt, self.config.no_input_prompt,
                     self.config.no_match_prompt, self.config.hold_prompt):
            if text:
                await self.tts.synthesise(text)
        await self.stack.start(self._incoming)
        self.running = True

    def _incoming(self, call: Any) -> None:
        session = CallSession(self, call)
        self.sessions[session.id] = session
        self._spawn(session.run())

    async def on_event(self, event: Event) -> None:
        """The bus: ownership changes of a call's conversation, and agents' call commands."""
        if not self.running:
            return
        change: StateChange | None = state_change(event)
        if change is not None:
            session = self.by_conversation.get(change.conversation_id)
            if session is not None:
                self._spawn(session.on_state(change.owner, change.agent_id, change.transition))
            return
        if isinstance(event, VoiceCommandEvent):
            self._spawn(self.command(event))

    async def command(self, event: VoiceCommandEvent) -> None:
        action = event.action
        if action == "dial":
            call = OutboundCall(self, int(event.agent_id), str(event.number), event.citizen_id,
                                str(event.call_id or ""))
            self.outbound[call.id] = call
            await call.run()
            return
        session = self.sessions.get(str(event.call_id)) or self.by_conversation.get(
            str(event.conversation_id)
        )
        if session is not None:
            if action in ("hold", "resume"):
                await session.hold(action == "hold")
            elif action == "hangup":
                await session.hang_up()
            return
        outbound = self.outbound.get(str(event.call_id))
        if outbound is not None and action == "hangup":
            await outbound.hang_up()

    async def stop(self) -> None:
        self.running = False
        for session in list(self.sessions.values()):
            await session.hang_up()
        for call in list(self.outbound.values()):
            await call.hang_up()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await self.clock.aclose()
        await self.stack.stop()

"""One inbound call from start to end: greeting, menu, questions to the bot, 转人工, hold, the agent's
phone, and the call record with its recording."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.models.base import utcnow
from voice_bridge.listen import Ear, Heard
from voice_bridge.media import Leg, Recorder
from voice_bridge.pcm import hold_music, stereo_wav
from voice_bridge.stack import number_of, on_closed

if TYPE_CHECKING:
    from voice_bridge.bridge import VoiceBridge

log = logging.getLogger(__name__)

BOT, QUEUED, AGENT, ENDED = "bot", "queued", "agent", "ended"
MUSIC_SECONDS = 8.0  # the hold music's loop (generated once: a long one would stall every call while built)


class CallSession:
    def __init__(self, bridge: VoiceBridge, call: Any) -> None:
        self.bridge = bridge
        self.config = bridge.config
        self.call = call
        self.id = str(uuid.uuid4())
        self.caller = number_of(call.peer)
        self.started_at: datetime = utcnow()
        self.recorder = Recorder()
        self.leg = Leg(call, f"citizen:{self.id[:8]}")
        self.leg.recorder = self.recorder
        self.ear = Ear(bridge.asr, self.config.vad, self.recorder.now)
        self.leg.listeners.append(self.ear.audio)
        self.ear.on_speech_start.append(self._barge_in)
        self.state = BOT
        self.conversation_id: str | None = None
        self.ivr_path: list[str] = []
        self.segments: list[dict[str, Any]] = []
        self.agent_leg: Leg | None = None
        self.agent_call: Any = None
        self.agent_id: int | None = None
        self.agent_ids: list[str] = []
        self.on_hold = False
        self.queued_at: float | None = None
        self.answered_at: float | None = None
        self.ended = asyncio.Event()
        self.state_changed = asyncio.Event()
        self.turns: list[dict[str, float]] = []  # per answered question: stage costs (bench/voice_latency.py)
        self._pending_turn: dict[str, Any] | None = None
        self.outcome = "bot"
        self.group: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        on_closed(self.call, lambda _reason: self.ended.set())
        self.call.on_dtmf(lambda event: self._key(event.digit))
        await self.call.answer()
        self.bridge.clock.add(self.leg)
        conversation_id, citizen_id = await self.bridge.path.open_call(self.id, self.caller)
        self.conversation_id = conversation_id
        self.bridge.by_conversation[conversation_id] = self
        await self.bridge.records.create(
            self.id, "inbound", self.caller, self.config.hotline_user, sip_call_id=self.call.call_id or "",
            conversation_id=conversation_id, citizen_id=citizen_id, started_at=self.started_at,
        )
        script = asyncio.create_task(self._script())
        await self.ended.wait()
        script.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await script
        await self._finish()

    async def _finish(self) -> None:
        self.bridge.clock.remove(self.leg)  # what was still playing is cut short (and so kept in segments)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self.agent_leg is not None:
            self.bridge.clock.remove(self.agent_leg)
        if self.agent_call is not None:
            with contextlib.suppress(Exception):
                await self.agent_call.hangup()
        previous, self.state = self.state, ENDED
        self.state_changed.set()
        ended = utcnow()
        talk = (time.monotonic() - self.answered_at) if self.answered_at else None
        wait = None
        if self.queued_at is not None:
            wait = (self.answered_at or time.monotonic()) - self.queued_at
        if previous == QUEUED:
            self.outcome = "abandoned"
            self.ivr_path.append("abandoned")
            await self.bridge.path.abandon(self.id)
        elif previous == BOT:
            await self.bridge.path.finish(self.id)
        elif previous == AGENT:
            await self.bridge.path.note(self.id, "通话已挂断")
        wav = stereo_wav(bytes(self.recorder.left), bytes(self.recorder.right))
        path = self.bridge.records.write_recording(self.id, self.started_at, wav)
        await self.bridge.records.update(
            self.id, ended_at=ended, outcome=self.outcome, ivr_path=self.ivr_path, segments=self.segments,
            wait_seconds=None if wait is None else round(wait, 2),
            talk_seconds=None if talk is None else round(talk, 2),
            recording_path=str(path), recording_seconds=round(len(self.recorder.left) / 16000, 2),
            agent_ids=self.agent_ids, agent_id=self.agent_id, group=self.group,
        )
        if self.conversation_id:
            self.bridge.by_conversation.pop(self.conversation_id, None)
        self.bridge.sessions.pop(self.id, None)
        self.bridge.finished_turns.extend(self.turns)
        with contextlib.suppress(Exception):
            await self.call.hangup()

    async def hang_up(self) -> None:
        with contextlib.suppress(Exception):
            await self.call.hangup()
        self.ended.set()

    # --- the bot part ----------------------------------------------------------------------------

    def _key(self, digit: str) -> None:
        if self.state == BOT:
            self.leg.stop_playback()  # barge-in by key
            self.ear.key(digit)

    def _barge_in(self) -> None:
        if self.state == BOT and self.leg.playing:
            self.leg.stop_playback()

    async def say(self, text: str, speaker: str = "bot") -> bool:
        """Speak `text` (TTS); True when it was heard to the end, False when the caller cut in."""
        pcm = await self.bridge.tts.synthesise(text)
        item = self.leg.play(pcm)
        started = None
        played = await item.done
        started = item.started_at
        if started is not None:
            start_s = started - self.recorder.start
            self.segments.append({
                "start_s": round(start_s, 2), "end_s": round(self.recorder.now(), 2), "speaker": speaker, "text": text,
            })
        return played

    def answer_said(self, text: str) -> None:
        """The bot's reply to the caller's question, delivered by the voice channel: spoken at once."""
        if self.state != BOT:
            return
        turn = self._pending_turn
        if turn is not None and "answer_ms" not in turn:  # dispatcher + Rasa + KB, until the first reply
            turn["answer_ms"] = (time.monotonic() - turn["ask_monotonic"]) * 1000
        task = asyncio.create_task(self._speak_answer(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _speak_answer(self, text: str) -> None:
        turn = self._pending_turn
        t0 = time.monotonic()
        pcm = await self.bridge.tts.synthesise(text)
        item = self.leg.play(pcm)
        if turn is not None and "tts_ms" not in turn:
            turn["tts_ms"] = (time.monotonic() - t0) * 1000
            turn["answer_ready_monotonic"] = time.monotonic()
        with contextlib.suppress(asyncio.CancelledError):
            started = await item.started
            if turn is not None and "first_audio_monotonic" not in turn:
                turn["first_audio_monotonic"] = started
                self._turn_done(turn)
        await item.done
        if item.started_at is not None:
            self.segments.append({
                "start_s": round(item.started_at - self.recorder.start, 2), "end_s": round(self.recorder.now(), 2),
                "speaker": "bot", "text": text,
            })

    def _turn_done(self, turn: dict[str, Any]) -> None:
        """The answer's first frame went out: keep what each stage cost on the caller's segment."""
        turn["first_audio_ms"] = (turn["first_audio_monotonic"] - turn["voice_end_monotonic"]) * 1000
        costs = {k: round(v, 1) for k, v in turn.items() if isinstance(v, float) and not k.endswith("_monotonic")}
        self.turns.append(costs)
        segment = turn.get("segment")
        if isinstance(segment, dict):
            segment["latency_ms"] = costs  # caller stopped speaking -> first answer audio, by stage

    async def _await_speech_done(self) -> None:
        """Until the answers the message path delivered are spoken (or cut short by the caller)."""
        while self._tasks or self.leg.playing:
            if self._tasks:
                await asyncio.wait(list(self._tasks))
            for item in list(self.leg.queue):
                await item.done

    async def _script(self) -> None:
        config = self.config
        self.ivr_path.append("greeting")
        self.ear.listening = True  # from the first word: speech or a key cuts any prompt short
        await self.say(config.greeting)
        failures = 0
        prompt = config.menu_prompt
        while self.state == BOT:
            if prompt:
                self.ivr_path.append("menu")
                await self.say(prompt)
            heard = await self.ear.next(config.input_timeout_seconds)
            if self.state != BOT:
                break
            prompt, failed = await self._handle(heard)
            failures = failures + 1 if failed else 0
            if failures >= config.failures_before_handoff and self.state == BOT:
                self.ivr_path.append("handoff:failures")
                await self.hand_off(None, "voice_failures")
        await self._hold_loop()

    async def _handle(self, heard: Heard) -> tuple[str, bool]:
        """Returns (the prompt to play next, whether it counts as a failure)."""
        config = self.config
        if heard.kind == "key":
            self.ivr_path.append(f"key:{heard.key}")
            await self.bridge.path.note(self.id, f"按键 {heard.key}")
            if heard.key == "*":
                return config.menu_prompt, False
            if heard.key == "0":
                await self.hand_off(None, "button")
                return "", False
            group = config.menu.get(heard.key)
            if group:
                await self.hand_off(group, "ivr_menu")
                return "", False
            await self.say(config.no_match_prompt)
            return config.menu_prompt, True
        if heard.kind == "silence":
            self.ivr_path.append("no_input")
            await self.say(config.no_input_prompt)
            return config.menu_prompt, True
        if not heard.text:
            self.ivr_path.append("no_match")
            self.segments.append({"start_s": round(heard.start_s, 2), "end_s": round(heard.end_s, 2),
                                  "speaker": "citizen", "text": ""})
            await self.say(config.no_match_prompt)
            return "", True
        self.ivr_path.append("speech")
        segment: dict[str, Any] = {"start_s": round(heard.start_s, 2), "end_s": round(heard.end_s, 2),
                                   "speaker": "citizen", "text": heard.text}
        self.segments.append(segment)
        turn: dict[str, Any] = dict(heard.timings, segment=segment, ask_monotonic=time.monotonic())
        self._pending_turn = turn
        await self.bridge.path.ask(self.id, heard.text, {"kind": "voice", "asr": self.bridge.asr.name})
        await self._await_speech_done()
        self._pending_turn = None
        self.ear.drain()
        return "", False

    # --- queue, hold and the agent ---------------------------------------------------------------

    async def hand_off(self, group: str | None, reason: str) -> None:
        self.ear.listening = False
        self.state = QUEUED
        self.queued_at = time.monotonic()
        self.group = group
        if group:
            self.ivr_path.append(f"group:{group}")
        await self.bridge.records.update(self.id, queued_at=utcnow(), group=group)
        await self.bridge.path.hand_off(self.id, group, reason)

    async def _hold_loop(self) -> None:
        while self.state in (QUEUED, AGENT):
            if self.state == QUEUED and not self.on_hold:
                text = self.config.hold_prompt
                position = await self.bridge.path.queue_position(self.id)
                if position and self.config.position_prompt:
                    text += self.config.position_prompt.format(ahead=max(0, position - 1), position=position)
                if self.state != QUEUED:
                    continue
                await self.say(text, speaker="system")
                if self.state == QUEUED:
                    self.leg.play(hold_music(MUSIC_SECONDS), loop=True)
            self.state_changed.clear()
            with contextlib.suppress(TimeoutError):  # the prompt and the position again after a while
                await asyncio.wait_for(self.state_changed.wait(), self.config.hold_music_seconds)
            if self.state == QUEUED and not self.on_hold:
                self.leg.stop_playback()

    async def on_state(self, owner: str, agent_id: int | None, transition: str) -> None:
        """The conversation's owner changed (any worker: the console, the queue's assignment)."""
        if self.state == ENDED:
            return
        if owner == "queued":
            await self._drop_agent()
            if self.state != QUEUED:
                self.state = QUEUED
                self.queued_at = self.queued_at or time.monotonic()
            self.state_changed.set()
        elif owner == "agent" and agent_id is not None and agent_id != self.agent_id:
            await self._drop_agent()
            self.state = AGENT
            self.agent_id = agent_id
            self.agent_ids.append(str(agent_id))
            self.ivr_path.append(f"agent:{agent_id}")
            self.state_changed.set()
            await self._ring_agent(agent_id)
        elif owner == "bot" and self.state in (QUEUED, AGENT):
            await self._drop_agent()
            if transition == "close" or self.state == AGENT:
                self.state = ENDED
                await self.hang_up()

    async def _ring_agent(self, agent_id: int) -> None:
        uri = await self.bridge.records.extension(agent_id)
        if not uri:
            await self.bridge.path.note(self.id, "该坐席未登记分机，无法振铃，请在坐席资料中填写分机号")
            return
        self.leg.stop_playback()
        self.leg.play(hold_music(MUSIC_SECONDS), loop=True)
        try:
            call = await self.bridge.stack.dial(uri)
            self.agent_call = call
            await call.wait_established(timeout=self.config.agent_ring_seconds)
        except Exception as exc:
            log.warning("agent %s's phone %s did not answer: %s", agent_id, uri, exc)
            await self.bridge.path.note(self.id, "坐席电话未接通")
            self.agent_call = None
            return
        if self.agent_id != agent_id or self.state != AGENT:
            with contextlib.suppress(Exception):
                await call.hangup()
            return
        leg = Leg(call, f"agent:{agent_id}")
        self.agent_leg = leg
        self.leg.stop_playback()
        self._connect()
        self.bridge.clock.add(leg)
        if self.answered_at is None:
            self.answered_at = time.monotonic()
            wait = round(self.answered_at - (self.queued_at or self.answered_at), 2)
            await self.bridge.records.update(self.id, answered_at=utcnow(), wait_seconds=wait, agent_id=agent_id)
        self.outcome = "answered"
        on_closed(call, lambda _reason: self._agent_hung_up(call))

    def _connect(self) -> None:
        if self.agent_leg is not None:
            self.agent_leg.peer, self.leg.peer = self.leg, self.agent_leg

    def _agent_hung_up(self, call: Any) -> None:
        if call is self.agent_call and self.state == AGENT:
            self.ended.set()  # the agent put the phone down: the call is over

    async def _drop_agent(self) -> None:
        call, leg = self.agent_call, self.agent_leg
        self.agent_call = self.agent_leg = None
        self.leg.peer = None
        if leg is not None:
            self.bridge.clock.remove(leg)
        if call is not None:
            with contextlib.suppress(Exception):
                await call.hangup()

    async def hold(self, on: bool) -> None:
        """The agent's 保持 / 恢复: the citizen hears music, neither hears the other."""
        if self.state != AGENT or self.on_hold == on:
            return
        self.on_hold = on
        self.ivr_path.append("hold" if on else "resume")
        if on:
            self.leg.peer = None
            if self.agent_leg is not None:
                self.agent_leg.peer = None
            self.leg.play(hold_music(MUSIC_SECONDS), loop=True)
        else:
            self.leg.stop_playback()
            self._connect()

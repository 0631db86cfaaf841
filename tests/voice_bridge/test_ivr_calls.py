"""Calls into the hotline from SIPp (a real SIP peer on loopback) against a hub worker running the call center."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import numpy as np
from sqlalchemy import select

from core.db import make_engine, make_sessionmaker
from core.models import Message
from tests.support import ROOT
from tests.voice_bridge.conftest import RegisteredHub, VoiceHub, calls_from
from tests.voice_bridge.rtp import keys_pcap, speech_pcap
from tests.voice_bridge.sipp import Ear, run_sipp, scenario
from voice_bridge import EspeakPinyinTts


def test_menu_keys_route_to_a_skill_group_and_a_caller_who_hangs_up_in_the_queue_is_abandoned(
    voice_hub: VoiceHub, tmp_path: Path
) -> None:
    ear = Ear()
    try:
        xml = scenario(
            [
                ("pause", 5500),  # the greeting, then the menu starts
                ("play", keys_pcap(tmp_path / "star.pcap", "*")),  # cuts the menu short: it starts again
                ("pause", 2000),
                ("play", keys_pcap(tmp_path / "one.pcap", "1")),  # 社保
                ("pause", 6000),  # the hold prompt and music; nobody of 社保 is signed in
            ],
            number="13900000001", ear_port=ear.port,
        )
        result = run_sipp(xml, voice_hub.sip, voice_hub.hotline, tmp_path)
    finally:
        ear.close()
    assert result.returncode == 0, result.output + result.errors
    [call] = calls_from(voice_hub.system.database_url, "13900000001")
    path = call.ivr_path
    assert path[:2] == ["greeting", "menu"]
    assert path.index("key:*") < path.index("key:1")
    assert path[path.index("key:*") + 1] == "menu"  # * repeats the menu
    assert "group:社保" in path and path[-1] == "abandoned"
    assert call.outcome == "abandoned" and call.group == "社保"
    assert call.wait_seconds is not None and 4 < call.wait_seconds < 10
    assert call.answered_at is None and call.talk_seconds is None
    # the caller heard speech from the first second, and something after pressing 1 (hold prompt, music)
    loud = ear.loud_times()
    assert loud, "the caller heard nothing"
    assert loud[-1] - loud[0] > 10
    # the recording holds both sides: the citizen's keys are silent, the hub's side is not
    assert call.recording_path and Path(call.recording_path).exists()
    with wave.open(call.recording_path) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert 12 < frames.shape[0] / 8000 < 20
    assert np.abs(frames[:, 1].astype(np.int32)).mean() > 200


DEMO = ROOT / "kb_sync" / "demo"
KB = {entry["id"]: entry for entry in map(json.loads, (DEMO / "kb.jsonl").read_text(encoding="utf-8").splitlines())}
QUESTION = "居住证每年都要去签一次吗"  # a paraphrase of D002 居住证到期了怎么续签？


def _messages(database_url: str, conversation_id: str) -> list[Message]:
    async def read() -> list[Message]:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                found = await session.execute(
                    select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
                )
                return list(found.scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_a_spoken_question_is_answered_aloud_from_the_knowledge_base(voice_hub: VoiceHub, tmp_path: Path) -> None:
    question = asyncio.run(EspeakPinyinTts(tmp_path / "tts").synthesise(QUESTION))  # the caller's voice
    voice_hub.nls.transcripts.append(QUESTION)  # what the cloud engine hears in it
    heard_before = len(voice_hub.nls.utterances)
    ear = Ear()
    try:
        xml = scenario(
            [("pause", 5000), ("play", speech_pcap(tmp_path / "question.pcap", question)), ("pause", 16000)],
            number="13900000002", ear_port=ear.port,
        )
        result = run_sipp(xml, voice_hub.sip, voice_hub.hotline, tmp_path)
    finally:
        ear.close()
    assert result.returncode == 0, result.output + result.errors
    [call] = calls_from(voice_hub.system.database_url, "13900000002")
    # the recogniser got the utterance as it was spoken: about its length, loud, with the token and app key
    [utterance] = voice_hub.nls.utterances[heard_before:]
    spoken = len(question) / 16000
    assert spoken - 0.5 < utterance.seconds < spoken + 1.5
    assert utterance.level > 300 and utterance.sample_rate == 8000
    # the transcript is a chat's: the citizen's words, then the KB's answer by the bot
    messages = _messages(voice_hub.system.database_url, str(call.conversation_id))
    asked = next(m for m in messages if m.sender == "citizen")
    assert asked.text == QUESTION and asked.channel == "voice"
    answer = next(m for m in messages if m.sender == "bot" and m.id > asked.id)
    assert "签注" in answer.text
    # the answer was spoken after the question: a bot segment after the citizen's, and audio in it
    citizen = next(s for s in call.segments if s["speaker"] == "citizen")
    assert citizen["text"] == QUESTION and citizen["end_s"] - citizen["start_s"] > spoken - 0.5
    spoken_answer = next(s for s in call.segments if s["speaker"] == "bot" and s["start_s"] > citizen["end_s"])
    assert spoken_answer["end_s"] - spoken_answer["start_s"] > 1.0
    with wave.open(str(call.recording_path)) as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    start, end = int(spoken_answer["start_s"] * 8000), int(spoken_answer["end_s"] * 8000)
    assert np.abs(frames[start:end, 1].astype(np.int32)).mean() > 300  # the caller heard it
    assert call.ivr_path[:2] == ["greeting", "menu"] and "speech" in call.ivr_path
    assert call.outcome == "bot"


def test_the_hotline_registered_with_kamailio_is_reached_through_it(
    registered_hub: RegisteredHub, tmp_path: Path
) -> None:
    ear = Ear()
    try:
        xml = scenario([("pause", 4000)], number="13900000005", ear_port=ear.port)
        result = run_sipp(xml, registered_hub.proxy, registered_hub.hotline, tmp_path)  # to Kamailio, not the hub
    finally:
        ear.close()
    assert result.returncode == 0, result.output + result.errors
    [call] = calls_from(registered_hub.system.database_url, "13900000005")
    assert call.callee == "12366" and call.ivr_path[:1] == ["greeting"]
    assert ear.loud_times(), "the caller heard nothing through the proxy"


def test_twenty_concurrent_calls_are_all_answered_and_none_dropped(voice_hub: VoiceHub, tmp_path: Path) -> None:
    ear = Ear()
    try:
        xml = scenario([("pause", 7000)], number="13900000020", ear_port=ear.port)
        result = run_sipp(xml, voice_hub.sip, voice_hub.hotline, tmp_path, calls=20, concurrency=20, rate=20)
    finally:
        ear.close()
    assert result.returncode == 0, result.output + result.errors  # SIPp: 20 successful calls, 0 failed
    calls = calls_from(voice_hub.system.database_url, "13900000020", count=20, timeout=30)
    assert len(calls) == 20
    assert all(c.ivr_path[:1] == ["greeting"] and c.recording_path for c in calls)
    assert len(ear.streams()) == 20  # every caller got its own audio stream
    loud = ear.loud_times()
    assert len(loud) > 20 * 50  # about a second of speech at least, per call

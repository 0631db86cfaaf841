"""The speech engines and the call records store, without a running system."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.models.base import utcnow
from tests.voice_bridge.fake_nls import FakeNls
from voice_bridge import AliyunNlsAsr, AsrError, CallQuery, CallRecords, EspeakPinyinTts, VoiceConfig, to_pinyin
from voice_bridge.pcm import level, stereo_wav


def test_text_becomes_tone_numbered_pinyin_with_digits_read_one_by_one() -> None:
    assert to_pinyin("您好，请按1。") == "nin2 hao3, qing3 an4 yi1."
    assert to_pinyin("工单12") == "gong1 dan1 yi1 er4"


async def test_espeak_speaks_mandarin_and_caches_it(tmp_path: Path) -> None:
    tts = EspeakPinyinTts(tmp_path)
    first = await tts.synthesise("欢迎致电政务服务热线")
    assert 1.0 < len(first) / 16000 < 6.0 and level(first) > 500
    assert len(sorted(tmp_path.glob("*.pcm"))) == 1  # noqa: ASYNC240 (a test's own temporary folder)
    assert await tts.synthesise("欢迎致电政务服务热线") == first


async def test_the_nls_client_streams_audio_and_returns_the_result() -> None:
    nls = FakeNls()
    try:
        nls.transcripts.append("社保卡怎么补办")
        stream = await AliyunNlsAsr(nls.url, nls.appkey, nls.token).start()
        # 0.5 s of a loud square wave, in 20 ms frames as a call delivers them
        pcm = (b"\x00\x20" * 40 + b"\x00\xe0" * 40) * 50
        for i in range(0, len(pcm), 320):
            await stream.feed(pcm[i : i + 320])
        assert await stream.finish() == "社保卡怎么补办"
        assert nls.utterances[-1].seconds == pytest.approx(0.5, abs=0.01) and nls.utterances[-1].level > 5000
        with pytest.raises(AsrError, match="40000001"):
            await AliyunNlsAsr(nls.url, nls.appkey, "wrong-token").start()
    finally:
        nls.close()


async def test_an_unreachable_recogniser_is_an_asr_error() -> None:
    with pytest.raises(AsrError):
        await AliyunNlsAsr("ws://127.0.0.1:9/ws/v1", "k", "t").start()


def test_voice_settings_from_config_and_environment_strings(settings: Settings) -> None:
    config = VoiceConfig.from_settings(settings.with_overrides({"voice.enabled": "true", "voice.max_calls": "7"}))
    assert config.enabled is True and config.max_calls == 7
    assert config.menu["1"] == "社保" and config.vad.end_silence_ms > 0
    assert config.recordings_dir.is_absolute()


async def test_call_records_search_and_recordings_past_retention_are_deleted(
    settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine(settings.database_url)
    try:
        records = CallRecords(make_sessionmaker(engine), tmp_path)
        old, new = utcnow() - timedelta(days=200), utcnow()
        for call_id, caller, when, outcome in (("a" * 8, "13800000001", old, "abandoned"),
                                               ("b" * 8, "13800000002", new, "answered")):
            await records.create(call_id, "inbound", caller, "12345", started_at=when, outcome=outcome)
            path = records.write_recording(call_id, when, stereo_wav(b"\x01\x00" * 800, b"\x02\x00" * 800))
            await records.update(call_id, recording_path=str(path))
        assert [r.id for r in await records.search(CallQuery(number="0002"))] == ["b" * 8]
        assert [r.id for r in await records.search(CallQuery(outcome="abandoned"))] == ["a" * 8]
        assert [r.id for r in await records.search(CallQuery(date_from=new - timedelta(days=1)))] == ["b" * 8]
        assert await records.purge_recordings(180) == 1
        gone, kept = await records.get("a" * 8), await records.get("b" * 8)
        assert gone is not None and gone.recording_path is None and not records.recording_path("a" * 8, old).exists()
        assert kept is not None and Path(str(kept.recording_path)).exists()  # noqa: ASYNC240
    finally:
        await engine.dispose()

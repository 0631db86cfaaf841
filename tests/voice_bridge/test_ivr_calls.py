"""Calls into the hotline from SIPp (a real SIP peer on loopback) against a hub worker running the call center."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.voice_bridge.conftest import VoiceHub, calls_from
from tests.voice_bridge.rtp import keys_pcap
from tests.voice_bridge.sipp import Ear, run_sipp, scenario


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
    import wave

    with wave.open(call.recording_path) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert 12 < frames.shape[0] / 8000 < 20
    assert np.abs(frames[:, 1].astype(np.int32)).mean() > 200

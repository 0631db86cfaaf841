"""An agent's side of calls, in Chromium against the running system: a caller's 转人工 rings the agent's
desk phone (baresip, auto-answer) with the screen-pop found by the caller's number in the console;
hold, resume and hang-up with a disposition; click-to-call; the call records page plays and exports."""

from __future__ import annotations

import asyncio
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from core.db import make_engine, make_sessionmaker
from core.models import AuditLog, User
from crm import CitizenDirectory
from tests.e2e.helpers import log_in, shot
from tests.voice_bridge.conftest import CALLED_CITIZEN, VoiceHub, calls_from
from tests.voice_bridge.phones import AgentPhone
from tests.voice_bridge.rtp import keys_pcap, speech_pcap
from tests.voice_bridge.sipp import run_sipp, scenario
from voice_bridge import EspeakPinyinTts

pytestmark = pytest.mark.e2e

CALLER = "13900000003"


async def _prepare(database_url: str) -> int:
    """A known citizen behind the caller's number (so the screen-pop has a name); agent1's user id."""
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        citizens = CitizenDirectory(sessions)
        citizen_id = await citizens.resolve("phone", CALLER)
        await citizens.update(citizen_id, name="王建国", phone=CALLER)
        async with sessions() as session:
            return int((await session.execute(select(User.id).where(User.username == "agent1"))).scalar_one())
    finally:
        await engine.dispose()


async def _audits(database_url: str, action: str) -> list[AuditLog]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.execute(select(AuditLog).where(AuditLog.action == action))).scalars())
    finally:
        await engine.dispose()


def _level(pcm: np.ndarray) -> float:
    return float(np.abs(pcm.astype(np.int32)).mean()) if pcm.size else 0.0


async def _set_extension(agent: Page, uri: str) -> None:
    await agent.get_by_test_id("nav-extension").click()
    await agent.get_by_test_id("ext-uri").fill(uri)
    await agent.get_by_test_id("ext-save").click()
    await expect(agent.get_by_test_id("ext-dialog")).not_to_be_visible()


async def test_a_call_handed_to_an_agent_rings_their_phone_with_the_screen_pop_then_hold_and_hang_up(
    voice_hub: VoiceHub, new_page, screenshots: Path, tmp_path: Path
) -> None:
    agent_id = await _prepare(voice_hub.system.database_url)
    phone = AgentPhone(tmp_path / "desk-phone", tone_hz=660)
    try:
        agent = await new_page(voice_hub.system.hub_url)
        await log_in(agent, "agent1", "agent1pass")
        await _set_extension(agent, phone.uri)
        voice = await EspeakPinyinTts(tmp_path / "tts").synthesise("你好，我想问一下社保卡丢了怎么补办")
        xml = scenario(
            # keys, then the caller keeps talking (in the background) until the hub hangs up
            [("pause", 4500), ("play", keys_pcap(tmp_path / "one.pcap", "1")), ("pause", 3000),
             ("play", speech_pcap(tmp_path / "voice.pcap", voice * 5, trailing_silence_ms=200))],
            number=CALLER, ear_port=free_rtp_port(), caller_hangs_up=False, hub_bye_timeout_ms=60000,
        )
        caller = asyncio.create_task(asyncio.to_thread(run_sipp, xml, voice_hub.sip, voice_hub.hotline, tmp_path))
        # 1 → 社保 → auto-assigned to agent1 (online): the console opens the call with the screen-pop
        await expect(agent.get_by_test_id("conv-view")).to_be_visible(timeout=30_000)
        await expect(agent.locator("#conv-channel")).to_have_text("电话")
        await expect(agent.get_by_test_id("pop-name")).to_have_text("王建国")
        bar = agent.get_by_test_id("call-bar")
        await expect(bar.get_by_test_id("call-number")).to_have_text("***0003")  # masked for an agent
        await expect(bar.get_by_test_id("call-status")).to_have_text("通话中", timeout=20_000)  # the phone answered
        await asyncio.sleep(5)  # the caller speaks to the agent (bridged)
        await bar.get_by_test_id("call-hold").click()
        await expect(bar.get_by_test_id("call-hold")).to_have_text("恢复通话")
        await asyncio.sleep(1.5)
        await bar.get_by_test_id("call-hold").click()
        await expect(bar.get_by_test_id("call-hold")).to_have_text("保持")
        await shot(agent, screenshots, "voice-console-call")
        await bar.get_by_test_id("call-disposition").select_option("resolved")
        await bar.get_by_test_id("call-hangup").click()
        result = await caller
        assert result.returncode == 0, result.output + result.errors  # the hub hung up on the caller
        await expect(bar.get_by_test_id("call-status")).to_have_text("通话已结束", timeout=10_000)
    finally:
        phone.stop()
    [call] = await asyncio.to_thread(calls_from, voice_hub.system.database_url, CALLER)
    assert call.outcome == "answered" and call.agent_id == agent_id and call.disposition == "resolved"
    assert call.group == "社保" and call.wait_seconds is not None and call.wait_seconds > 0
    assert call.talk_seconds is not None and call.talk_seconds > 5
    assert "hold" in call.ivr_path and "resume" in call.ivr_path and f"agent:{agent_id}" in call.ivr_path
    assert phone.heard_level() > 300  # the agent's phone heard the caller (and the hub before)
    with wave.open(str(call.recording_path)) as recorded:
        frames = np.frombuffer(recorded.readframes(recorded.getnframes()), dtype="<i2").reshape(-1, 2)
    # the agent's voice (a 660 Hz tone) reached the caller's side of the recording: a strong line at 660 Hz
    heard = frames[:, 1].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(heard))
    hz = np.fft.rfftfreq(heard.size, 1 / 8000)
    near = spectrum[(hz > 650) & (hz < 670)].max()
    assert near > 100 * np.median(spectrum)  # (speech alone: ~10; this call: ~250)


def free_rtp_port() -> int:
    from tests.voice_bridge.conftest import free_udp_port

    return free_udp_port()


async def test_click_to_call_then_the_call_records_page_plays_and_exports(
    voice_hub: VoiceHub, new_page, screenshots: Path, tmp_path: Path
) -> None:
    phone = AgentPhone(tmp_path / "desk-phone-2", user="8002", tone_hz=550)
    try:
        agent = await new_page(voice_hub.system.hub_url)
        await log_in(agent, "agent2", "agent2pass")
        await _set_extension(agent, phone.uri)
        csrf = {"X-CSRF-Token": next(c["value"] for c in await agent.context.cookies() if c["name"] == "zwkf_csrf")}
        reply = await agent.request.post("/api/calls/dial", data={"number": "12"}, headers=csrf)
        assert reply.status == 400 and "电话号码" in (await reply.json())["reason"]
        reply = await agent.request.post("/api/calls/dial", data={"number": CALLED_CITIZEN}, headers=csrf)
        assert reply.status == 202
        call_id = (await reply.json())["call_id"]
        # the agent's phone rings first, then the citizen's (through the trunk); both answer: bridged
        await asyncio.sleep(6)
        hung = await agent.request.post(f"/api/calls/{call_id}/hangup", data={"disposition": "resolved"}, headers=csrf)
        assert hung.status == 200
    finally:
        phone.stop()
    [call] = (await asyncio.to_thread(calls_from, voice_hub.system.database_url, voice_hub.hotline))[-1:] or [None]
    assert call is not None and call.id == call_id and call.direction == "outbound"
    assert call.callee == CALLED_CITIZEN and call.outcome == "answered" and call.talk_seconds > 2
    assert phone.heard_level() > 300 and voice_hub.citizen_phone.heard_level() > 300  # each heard the other

    supervisor = await new_page(voice_hub.system.hub_url)
    await log_in(supervisor, "super1", "super1pass", landing="/calls")
    await supervisor.get_by_test_id("f-number").fill(CALLED_CITIZEN)
    await supervisor.get_by_test_id("f-search").click()
    rows = supervisor.get_by_test_id("call-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first.get_by_test_id("call-outcome")).to_have_text("人工接听")
    await rows.first.click()
    audio = supervisor.get_by_test_id("call-audio")
    await supervisor.get_by_test_id("play").click()
    await supervisor.wait_for_function(
        "() => document.querySelector('[data-testid=call-audio]').currentTime > 0.5", timeout=10_000
    )
    box = await supervisor.get_by_test_id("waveform").bounding_box()
    assert box is not None
    await supervisor.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)  # seek to 80 %
    duration = await audio.evaluate("a => a.duration")
    position = await audio.evaluate("a => a.currentTime")
    assert duration > 2 and position >= duration * 0.7
    await shot(supervisor, screenshots, "voice-call-records")
    async with supervisor.expect_download() as one:
        await supervisor.get_by_test_id("export-one").click()
    saved = await (await one.value).path()
    with wave.open(str(saved)) as exported:
        assert exported.getnchannels() == 2 and exported.getnframes() / 8000 > 2
    async with supervisor.expect_download() as many:
        await supervisor.get_by_test_id("export-zip").click()
    zipped = await (await many.value).path()
    with zipfile.ZipFile(zipped) as archive:
        assert len(archive.namelist()) == 1 and archive.namelist()[0].endswith(".wav")
    exports = await _audits(voice_hub.system.database_url, "call.export")
    assert {a.target for a in exports} >= {f"call:{call_id}", "calls:search"}

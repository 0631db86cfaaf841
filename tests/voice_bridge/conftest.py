"""A hub worker with the call center on (joining the session's running system: its database, Redis
prefix and Rasa), a fake Alibaba Cloud NLS, and helpers to place calls with SIPp."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db import make_engine, make_sessionmaker
from core.models.voice import CallRecord
from tests.conftest import LOG_DIR, RunningSystem
from tests.e2e.conftest import browser, chromium_path, new_context, new_page, screenshots  # noqa: F401
from tests.support import ROOT, Hubs, start_hubs
from tests.voice_bridge.fake_nls import FakeNls
from tests.voice_bridge.phones import AgentPhone


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CALLED_CITIZEN = "13900000009"  # the number click-to-call dials in tests (the citizen phone behind the trunk)


@dataclass
class VoiceHub:
    url: str
    sip: str  # host:port of the hotline
    hotline: str
    nls: FakeNls
    system: RunningSystem
    recordings: Path
    hubs: Hubs
    citizen_phone: AgentPhone  # the trunk's far end: a citizen's phone answering calls out


def voice_config(sip_port: int, nls: FakeNls, recordings: Path, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True, "sip_listen": f"127.0.0.1:{sip_port}", "hotline_user": "12345",
        "input_timeout_seconds": 3, "hold_music_seconds": 4, "agent_ring_seconds": 10,
        "asr": "aliyun_nls", "aliyun_nls": {"url": nls.url, "appkey": nls.appkey, "token": nls.token},
        "recordings_dir": str(recordings), "tts_cache_dir": str(ROOT / "var" / "tts-cache"), **extra,
    }


@pytest.fixture(scope="module")
def voice_hub(system: RunningSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceHub]:
    warm_up(system.rasa_url)
    nls = FakeNls()
    sip_port = free_udp_port()
    recordings = tmp_path_factory.mktemp("recordings")
    env = {
        "DATABASE_URL": system.database_url, "REDIS_URL": system.redis_url, "RASA_URL": system.rasa_url,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": system.prefix,
    }
    citizen_phone = AgentPhone(tmp_path_factory.mktemp("citizen-phone"), user=CALLED_CITIZEN, tone_hz=440)
    trunk = citizen_phone.uri.split("@", 1)[1]
    hubs = start_hubs(
        env, 1, LOG_DIR, name="voicehub",
        config={"voice": voice_config(sip_port, nls, recordings, trunk=trunk), "handoff": {"auto_assign": True}},
    )
    try:
        wait_running(hubs.urls[0])
        yield VoiceHub(hubs.urls[0], f"127.0.0.1:{sip_port}", "12345", nls, system, recordings, hubs, citizen_phone)
    finally:
        hubs.stop()
        nls.close()
        citizen_phone.stop()


def warm_up(rasa_url: str) -> None:
    """One message through Rasa first: its first answer after a start loads the tokenizer (~10 s here)."""
    import json
    import urllib.request

    body = json.dumps({"sender": "voice-warm-up", "message": "你好"}).encode()
    request = urllib.request.Request(f"{rasa_url}/webhooks/rest/webhook", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=180) as reply:
        reply.read()


def wait_running(url: str, timeout: float = 30) -> None:
    """The worker reports its SIP user agent running (it starts once the worker serves HTTP)."""
    import json
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/calls/status", timeout=5) as reply:
            if json.loads(reply.read())["running"]:
                return
        time.sleep(0.2)
    raise TimeoutError("the call center did not start")


async def _calls(database_url: str, caller: str) -> list[CallRecord]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            found = await session.execute(
                select(CallRecord).where(CallRecord.caller == caller).order_by(CallRecord.started_at)
            )
            return list(found.scalars())
    finally:
        await engine.dispose()


def calls_from(database_url: str, caller: str, count: int = 1, timeout: float = 15) -> list[CallRecord]:
    """The finished call records of a caller (waits until `count` have ended)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        rows = asyncio.run(_calls(database_url, caller))
        done = [row for row in rows if row.ended_at is not None]
        if len(done) >= count or time.monotonic() > deadline:
            return done
        time.sleep(0.3)


@dataclass
class RegisteredHub:
    url: str
    proxy: str  # Kamailio's host:port: callers dial the hotline through it
    hotline: str
    system: RunningSystem


@pytest.fixture(scope="module")
def registered_hub(system: RunningSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegisteredHub]:
    """A second call-center worker whose hotline registers with Kamailio (a registrar on loopback)."""
    from tests.voice_bridge.kamailio import Kamailio

    kamailio = Kamailio(tmp_path_factory.mktemp("kamailio"))
    nls = FakeNls()
    env = {
        "DATABASE_URL": system.database_url, "REDIS_URL": system.redis_url, "RASA_URL": system.rasa_url,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": system.prefix + "reg:",  # its own Redis lock and queues
    }
    config = voice_config(free_udp_port(), nls, tmp_path_factory.mktemp("reg-recordings"),
                          hotline_user="12366", registrar=kamailio.address, asr="none")
    hubs = start_hubs(env, 1, LOG_DIR, name="voicehub-registered", config={"voice": config})
    try:
        wait_running(hubs.urls[0])
        yield RegisteredHub(hubs.urls[0], kamailio.address, "12366", system)
    finally:
        hubs.stop()
        kamailio.stop()
        nls.close()

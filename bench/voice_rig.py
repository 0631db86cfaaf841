"""What the voice benches share: a scratch system (SQLite, the configured Redis under a fresh prefix,
optionally Rasa) and one hub worker with the call center on, answering on a free SIP port, with the
local Alibaba Cloud NLS stand-in as its recogniser. Callers are SIPp (tests/voice_bridge)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import ensure_model, start_rasa, stop_rasa, wait_ready
from core.config import load_settings
from core.migrate import upgrade
from core.secrets import action_webhook_url
from hub.seed import seed
from tests.support import free_port, start_hub, stop_process, write_config
from tests.voice_bridge.conftest import free_udp_port, voice_config, wait_running, warm_up
from tests.voice_bridge.fake_nls import FakeNls


@dataclass
class Rig:
    tmp: Path
    hub_url: str
    sip: str
    hotline: str
    database_url: str
    nls: FakeNls
    hub_pid: int

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.hub_url}/api/calls/status", timeout=5) as reply:
            return json.loads(reply.read())


@contextmanager
def voice_rig(*, with_rasa: bool, **voice: Any) -> Iterator[Rig]:
    tmp = Path(tempfile.mkdtemp(prefix="zwkf-voice-bench-"))
    database_url = f"sqlite:///{tmp / 'bench.db'}"
    prefix = f"vbench{uuid.uuid4().hex[:6]}:"
    settings = load_settings().with_overrides(
        {"storage.database_url": database_url, "storage.redis_key_prefix": prefix}
    )
    upgrade(database_url)
    asyncio.run(seed(settings))
    hub_port, rasa_port = free_port(), free_port()
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    rasa = None
    if with_rasa:
        os.environ["RASA_REDIS_KEY_PREFIX"] = prefix.strip(":")
        rasa = start_rasa(ensure_model(), rasa_port,
                          action_webhook_url(f"http://127.0.0.1:{hub_port}", str(settings.get("hub.secret_key"))),
                          settings.redis_url, tmp / "rasa.log")
    nls = FakeNls()
    sip_port = free_udp_port()
    env = {"DATABASE_URL": database_url, "REDIS_URL": settings.redis_url, "RASA_URL": rasa_url,
           "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix}
    hub = None
    try:
        if rasa is not None:
            wait_ready(rasa_url, timeout=300, proc=rasa)
            warm_up(rasa_url)
        config = voice_config(sip_port, nls, tmp / "recordings", max_calls=200, **voice)
        env["ZWKF_CONFIG"] = str(write_config(tmp / "config", {"voice": config}))
        hub = start_hub(env, hub_port, tmp / "voicehub.log")  # on the port Rasa's actions call back
        url = f"http://127.0.0.1:{hub_port}"
        wait_running(url)
        yield Rig(tmp, url, f"127.0.0.1:{sip_port}", "12345", database_url, nls, hub.pid)
    finally:
        if hub is not None:
            stop_process(hub)
        if rasa is not None:
            stop_rasa(rasa)
        nls.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))] if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

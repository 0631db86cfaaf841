"""The demo ships with the bureau's working hours on (issue 13.10): at 03:30 a citizen asking for a
person is told, honestly, that it is 非工作时间 and when people are back, and may leave a 留言 —
instead of waiting in a queue nobody serves. (The suite itself turns hours off: tests/conftest.py.)"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from core.config import Settings, load_settings
from handoff import Owner
from tests.handoff.helpers import make_hub

SH = ZoneInfo("Asia/Shanghai")


def shipped_hours_enabled() -> bool:
    return load_settings(environ={}).get("handoff.working_hours.enabled") is True  # config.yml as shipped


def test_the_shipped_config_keeps_working_hours() -> None:
    assert shipped_hours_enabled()


async def test_at_half_past_three_at_night_the_citizen_hears_when_people_are_back(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    hub = await make_hub(settings, redis_client, {"handoff.working_hours.enabled": shipped_hours_enabled()})
    try:
        hub.at(datetime(2025, 10, 14, 3, 30, tzinfo=SH))  # a Tuesday, 03:30
        conv = await hub.citizen_writes("v-night", "转人工")
        assert (await hub.ownership.state(conv.id)).owner == Owner.BOT  # nobody to wait for: not queued
        last = (await hub.messages(conv.id))[-1]
        assert last.sender == "system" and last.meta["off_hours"] and last.meta["offer_leave_message"]
        assert "非工作时间" in last.text and "08:30" in last.text and "留言" in last.text
    finally:
        await hub.close()

"""In Chromium: the 班长看板 lists the waiting citizens; the supervisor watches one, reloads the
page (the hub remembers the watch), and takes the conversation over straight from the queue,
seeing their own load before and after; the citizen sees the supervisor's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import RunningSystem
from tests.e2e.helpers import log_in, shot
from tests.support import ChatClient

pytestmark = pytest.mark.e2e


async def test_supervisor_takes_over_a_waiting_citizen_from_the_board(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    boss = await new_page(system.hub_urls[0])
    await log_in(boss, "super1", "super1pass", landing="/supervisor")
    await expect(boss.locator("#my-load")).to_have_text(re.compile(r"^我的接待 0/\d+$"))

    async with ChatClient(system.hub_urls[1]) as citizen:
        await citizen.send_frame({"type": "human"})
        await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        conv = citizen.conversation_id
        row = boss.locator(f'#board-waiting tr.w-row[data-conversation-id="{conv}"]')
        await expect(row).to_have_count(1)
        await expect(row.locator(".w-group")).to_have_text("综合")

        # watching a waiting citizen: the transcript, no whisper (nobody serves them yet)
        await row.locator(".watch-btn").click()
        await expect(boss.locator("#watch-title")).to_contain_text("排队中")
        await citizen.say("请问社保卡丢了怎么补办")
        watch = boss.locator("#watch-transcript")
        await expect(watch.locator(".msg[data-sender=citizen]")).to_contain_text("请问社保卡丢了怎么补办")
        await expect(boss.locator("#whisper-send")).to_be_disabled()

        # a reload (maybe onto the other worker) keeps watching: the hub remembers
        await boss.reload()
        await expect(boss.locator("#conn-dot")).to_have_attribute("data-state", "online")
        await expect(boss.locator("#watch-panel")).to_have_attribute("data-conversation-id", conv)
        await expect(watch.locator(".msg[data-sender=citizen]")).to_contain_text("请问社保卡丢了怎么补办")

        takeover = row.locator(".takeover-btn")
        await takeover.click()
        await expect(takeover).to_have_text("确认接管？")
        await expect(takeover).to_have_attribute("title", re.compile(r"您当前接待 0/\d+，接管不受上限限制"))
        await takeover.click()
        await expect(boss.locator("#toast")).to_contain_text("已接管（您当前接待 1/")
        await expect(row).to_have_count(0)  # no longer waiting
        await expect(boss.locator("#my-load")).to_have_text(re.compile(r"^我的接待 1/\d+$"))
        await expect(boss.locator("#takeover-banner")).to_contain_text("您正在亲自服务 1 个会话")
        state = await citizen.next_frame("state", where=lambda f: f["owner"] == "agent")
        assert state["agent_name"] == "赵磊"
        await shot(boss, screenshots, "supervisor-take-over-waiting")

"""The 班长看板 through a busy moment (issue 13.18, 13.19, 13.21), in Chromium at 1440×900 against the
whole system: nine citizens wait; each waiting row says who (citizen, channel, their last line), not a
conversation id; the 排队情况 table shows the busy group's row whole; today's figures head the board."""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import RunningSystem
from tests.e2e.helpers import log_in, shot, wide
from tests.support import ChatClient

pytestmark = pytest.mark.e2e

WAITING = 9


async def test_a_busy_queue_on_the_board_says_who_waits_and_today_s_figures(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    boss = await wide(await new_page(system.hub_urls[0]))
    await log_in(boss, "super1", "super1pass", landing="/supervisor")
    async with AsyncExitStack() as stack:
        citizens = [await stack.enter_async_context(ChatClient(system.hub_urls[1])) for _ in range(WAITING)]
        for n, citizen in enumerate(citizens, start=1):
            await citizen.say(f"第{n}位市民：社保卡补办要多久")
            await citizen.send_frame({"type": "human"})
            await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        try:
            rows = boss.locator("#board-waiting tr.w-row")
            await expect(rows).to_have_count(WAITING)
            # 18. who waits: the citizen, the channel and their last line
            first = boss.locator(f'#board-waiting tr.w-row[data-conversation-id="{citizens[0].conversation_id}"]')
            who = first.locator("[data-testid=board-who]")
            await expect(who.locator(".who-name")).to_have_text("访客")
            await expect(who.locator(".who-channel")).to_have_text("网页")
            await expect(who.locator(".who-last")).to_contain_text("第1位市民：社保卡补办要多久")
            await expect(who).not_to_contain_text("会话 ")

            # 19. the busy group's row is whole inside its panel, not cut off
            busy = boss.locator('#board-queues tr.queue-row[data-group="综合"]')
            await expect(busy.locator(".q-waiting")).to_have_text(str(WAITING))
            clipped = await busy.evaluate(
                "row => { const panel = row.closest('.panel').getBoundingClientRect();"
                " const r = row.getBoundingClientRect(); return r.bottom > panel.bottom + 0.5 || r.height < 10; }"
            )
            assert not clipped, "the 排队情况 panel cuts off the busy group's row"

            # 21. today's figures: conversations, bot containment, waiting, abandoned, CSAT
            today = boss.locator("[data-testid=board-today]")
            await expect(today.locator("[data-testid=today-waiting] .fig-value")).to_have_text(str(WAITING))
            count = today.locator("[data-testid=today-conversations] .fig-value")
            await expect(count).to_have_text(re.compile(r"^\d+$"))
            assert int(await count.inner_text()) >= WAITING
            figure = today.locator("[data-testid=today-containment] .fig-value")
            await expect(figure).to_have_text(re.compile(r"^\d+%$"))
            await expect(today.locator("[data-testid=today-abandoned] .fig-value")).to_have_text(re.compile(r"^\d+$"))
            await expect(today.locator("[data-testid=today-csat]")).to_contain_text("今日满意度")
            await shot(boss, screenshots, "shift-board-busy", full_page=False)
        finally:
            for citizen in citizens:  # leave the queue for the tests that follow (a 留言 each)
                await citizen.send_frame({"type": "leave_message", "text": "测试结束，留言离开排队"})
                await citizen.next_frame("done")

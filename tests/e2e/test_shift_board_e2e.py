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
        groups = set()
        for n, citizen in enumerate(citizens, start=1):
            await citizen.say(f"第{n}位市民：社保卡补办要多久")
            await citizen.send_frame({"type": "human"})
            queued = await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
            groups.add(queued.get("group"))
        [group] = groups  # the same question routes them all to one skill group (综合, or 社保 by the KB branch)
        try:
            # (earlier tests' citizens may still wait too: a requeue puts them first in line)
            for citizen in citizens:
                row = boss.locator(f'#board-waiting tr.w-row[data-conversation-id="{citizen.conversation_id}"]')
                await expect(row).to_have_count(1)
            # 18. who waits: the citizen, the channel and their last line
            first = boss.locator(f'#board-waiting tr.w-row[data-conversation-id="{citizens[0].conversation_id}"]')
            who = first.locator("[data-testid=board-who]")
            await expect(who.locator(".who-name")).to_have_text("访客")
            await expect(who.locator(".who-channel")).to_have_text("网页")
            await expect(who.locator(".who-last")).to_contain_text("第1位市民：社保卡补办要多久")
            await expect(who).not_to_contain_text("会话 ")

            # 19. the busy group's row is whole inside its panel, not cut off
            busy = boss.locator(f'#board-queues tr.queue-row[data-group="{group}"]')
            # at least the nine (the live board catches up within a frame or two: wait for it)
            await expect(busy.locator(".q-waiting")).to_have_text(re.compile(r"^(9|[1-9]\d+)$"))
            clipped = await busy.evaluate(
                "row => { const panel = row.closest('.panel').getBoundingClientRect();"
                " const r = row.getBoundingClientRect(); return r.bottom > panel.bottom + 0.5 || r.height < 10; }"
            )
            assert not clipped, "the 排队情况 panel cuts off the busy group's row"

            # 21. today's figures: conversations, bot containment, waiting, abandoned, CSAT
            today = boss.locator("[data-testid=board-today]")
            waiting_now = await boss.locator("#board-waiting tr.w-row").count()
            await expect(today.locator("[data-testid=today-waiting] .fig-value")).to_have_text(str(waiting_now))
            count = today.locator("[data-testid=today-conversations] .fig-value")
            await expect(count).to_have_text(re.compile(r"^(9|[1-9]\d+)$"))  # at least these nine today
            figure = today.locator("[data-testid=today-containment] .fig-value")
            await expect(figure).to_have_text(re.compile(r"^\d+%$"))
            await expect(today.locator("[data-testid=today-abandoned] .fig-value")).to_have_text(re.compile(r"^\d+$"))
            await expect(today.locator("[data-testid=today-csat]")).to_contain_text("今日满意度")
            await shot(boss, screenshots, "shift-board-busy", full_page=False)
        finally:
            for citizen in citizens:  # leave the queue for the tests that follow (a 留言 each)
                await citizen.send_frame({"type": "leave_message", "text": "测试结束，留言离开排队"})
                await citizen.next_frame("done")


async def test_take_over_then_answer_on_the_board_and_the_confirm_waits(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    boss = await wide(await new_page(system.hub_urls[0]))
    await log_in(boss, "super1", "super1pass", landing="/supervisor")
    async with ChatClient(system.hub_urls[1]) as citizen:
        await citizen.say("我的社保卡一直没寄到")
        await citizen.send_frame({"type": "human"})
        await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        row = boss.locator(f'#board-waiting tr.w-row[data-conversation-id="{citizen.conversation_id}"]')
        takeover = row.locator(".takeover-btn")
        await takeover.click()
        await expect(takeover).to_have_text("确认接管？")
        await boss.wait_for_timeout(6000)  # reading the row before deciding: the question is still asked
        await expect(takeover).to_have_text("确认接管？")
        await takeover.click()
        await expect(boss.locator("#toast")).to_contain_text("可在右侧直接回复市民")

        # answered in place: the conversation opens in the 监听 panel with a reply box
        panel = boss.locator("#watch-panel")
        await expect(panel).to_have_attribute("data-conversation-id", citizen.conversation_id)
        await expect(boss.locator("#sv-reply-form")).to_be_visible()
        await expect(boss.locator("#whisper-form")).to_be_hidden()
        await expect(panel.locator(".msg[data-sender=citizen]")).to_contain_text("我的社保卡一直没寄到")
        await boss.locator("#sv-reply-input").fill("您好，我是班长赵磊，马上帮您查寄送进度。")
        await shot(boss, screenshots, "shift-board-take-over-reply", full_page=False)
        await boss.locator("#sv-reply-send").click()
        reply = await citizen.reply_from("agent")
        assert reply["text"] == "您好，我是班长赵磊，马上帮您查寄送进度。" and reply["sender_name"] == "赵磊"
        await expect(panel.locator(".msg[data-sender=agent]")).to_contain_text("马上帮您查寄送进度")

        # done: closed from the 坐席工作台, so the board's later users start with no load of mine
        await boss.goto("/agent")
        tab = boss.locator(f'#my-convs .conv-tab[data-conversation-id="{citizen.conversation_id}"]')
        await tab.click()
        await boss.locator("#close-conv").click()
        await boss.locator("#close-ok").click()
        await expect(tab).to_have_attribute("data-ended", "true")

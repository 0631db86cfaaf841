"""The citizen's chat through a real shift (issue 13), in a real browser against the whole system
(real Rasa, two hub workers):

- after 结束会话 the rating prompt shows five stars; a click rates the service, and a typed
  "5分，服务很好" is a rating too, not a question for the bot;
- a reload after 结束会话 keeps the ended conversation visible, read-only, with the agent's answer;
- a ticket's reply sent "to the citizen" arrives in the chat they have open now;
- while queued: the estimated wait (never "前面还有 0 人") and a 留言 button that leaves a message;
- a 5,000-character paste is kept and said to be over 1,000 characters before anything is sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from core.db import make_engine
from core.models import CsatRating, Ticket
from tests.conftest import RunningSystem
from tests.e2e.helpers import accept, ask_for_a_person, keep_frames, log_in, shot, wide

pytestmark = pytest.mark.e2e

ANSWER = "您好，居住证可以在政务服务网在线申请，材料是身份证和居住证明。"


async def _rating(system: RunningSystem, conversation_id: str) -> CsatRating | None:
    engine = make_engine(system.database_url)
    try:
        async with engine.connect() as db:
            return (
                await db.execute(select(CsatRating).where(CsatRating.conversation_id == conversation_id))
            ).first()
    finally:
        await engine.dispose()


async def test_rating_stars_a_typed_rating_the_ended_conversation_after_a_reload_and_a_ticket_reply(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    citizen = await wide(await new_page(system.hub_urls[1]))
    frames = keep_frames(citizen)
    agent = await wide(await new_page(system.hub_urls[0]))
    agent_frames = keep_frames(agent)
    await log_in(agent, "agent1", "agent1pass")
    status, conv = await ask_for_a_person(citizen, frames)
    await accept(agent, conv)
    assigned = next(
        json.loads(f) for f in agent_frames if '"assigned"' in f and json.loads(f).get("conversation_id") == conv
    )
    citizen_id = assigned["screen_pop"]["citizen"]["id"]
    csrf = next(c["value"] for c in await agent.context.cookies() if c["name"] == "zwkf_csrf")  # as the page sends it
    ticket = await agent.request.post(
        "/api/crm/tickets",
        data={"citizen_id": citizen_id, "title": "居住证办理进度", "body": "市民要求告知进度", "conversation_id": conv},
        headers={"X-CSRF-Token": csrf},
    )
    assert ticket.ok, await ticket.text()
    ticket_id = (await ticket.json())["id"]

    await agent.locator("#reply-input").fill(ANSWER)
    await agent.locator("#reply-send").click()
    messages = citizen.locator("#chat-messages")
    await expect(messages.locator(".msg[data-sender=agent]").filter(has_text="政务服务网")).to_have_count(1)
    await agent.locator("#close-conv").click()
    await agent.locator("#close-ok").click()
    await expect(agent.locator("#conv-state")).to_have_text("会话已结束")

    # 1. the rating prompt shows five stars; one click rates the service
    stars = citizen.locator("[data-testid=chat-csat]").last
    await expect(stars.locator("[data-testid=chat-csat-star]")).to_have_count(5)
    await shot(citizen, screenshots, "shift-chat-rating", full_page=False)
    await stars.locator('[data-testid=chat-csat-star][data-score="4"]').click()
    await expect(stars.locator("[data-testid=chat-csat-note]")).to_have_text("已评价 4 分，感谢！")
    await expect(messages.locator(".msg[data-sender=system]").filter(has_text="感谢您的评价")).to_have_count(1)
    rating = await _rating(system, conv)
    assert rating is not None and rating.score == 4

    # a typed reply to the prompt is a rating as well: thanked for, never answered by the bot
    await citizen.locator("#chat-input").fill("5分，服务很好")
    await citizen.locator("#chat-send").click()
    await expect(messages.locator(".msg[data-sender=system]").filter(has_text="感谢您的评价")).to_have_count(2)
    await citizen.wait_for_timeout(1500)  # time enough for a bot answer, were one coming
    await expect(messages.locator(".msg[data-sender=bot]").filter(has_text="我只能解答")).to_have_count(0)
    await expect(status).to_have_attribute("data-owner", "bot")
    rating = await _rating(system, conv)
    assert rating is not None and (rating.score, rating.comment) == (5, "5分，服务很好")

    # 5. a reload keeps the ended conversation visible, read-only, with the agent's answer
    await citizen.reload()
    await expect(status).to_have_attribute("data-owner", "bot")
    previous = citizen.locator("#chat-previous")
    await expect(previous).to_be_visible()
    await expect(previous).to_contain_text("上次会话（已结束）")
    await expect(previous.locator(".msg[data-sender=agent]").filter(has_text="政务服务网")).to_have_count(1)
    await expect(previous.locator("[data-testid=chat-csat-star]:enabled")).to_have_count(0)  # already rated
    await expect(previous.locator("[data-testid=chat-csat-note]")).to_have_text("已评价 5 分，感谢！")
    await shot(citizen, screenshots, "shift-chat-previous", full_page=False)

    # 6. the ticket's reply, sent to the citizen from /tickets, arrives in the chat open now
    await agent.goto("/tickets")
    await agent.locator(f'#ticket-rows tr.ticket-row[data-ticket-id="{ticket_id}"]').click()
    await agent.locator("[data-testid=detail-reply]").fill("您的居住证已制好，请到政务服务中心 3 号窗口领取。")
    await agent.locator("[data-testid=detail-save]").click()
    await expect(agent.locator("#toast")).to_contain_text("答复已发送给市民")
    reply = messages.locator(".msg[data-sender=agent]").filter(has_text=f"工单 #{ticket_id} 答复")
    await expect(reply).to_have_count(1)
    await citizen.reload()
    await expect(reply).to_have_count(1)


async def test_queued_citizen_sees_the_wait_and_leaves_a_message_and_a_long_paste_is_flagged(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    citizen = await wide(await new_page(system.hub_urls[0]))
    frames = keep_frames(citizen)

    # 9. a 5,000-character paste stays whole and is flagged before anything is sent
    await citizen.goto("/chat")
    await expect(citizen.locator("#chat-status")).to_have_attribute("data-owner", "bot")
    await citizen.locator("#chat-input").focus()
    await citizen.keyboard.insert_text("我想咨询一下居住证的办理。" * 385)  # 5,005 characters
    await expect(citizen.locator("#chat-counter")).to_have_text("5005/1000")
    await expect(citizen.locator("#chat-length-note")).to_be_visible()
    await expect(citizen.locator("#chat-length-note")).to_contain_text("超过 1000 字")
    await expect(citizen.locator("#chat-send")).to_be_disabled()
    await shot(citizen, screenshots, "shift-chat-long-paste", full_page=False)
    await citizen.locator("#chat-input").fill("")
    await expect(citizen.locator("#chat-length-note")).to_be_hidden()

    # 8. queued (nobody answers in this test): the estimated wait, not "前面还有 0 人"
    status, conv = await ask_for_a_person(citizen, frames)
    await expect(status).to_have_text(re.compile(r"预计等待"))
    await expect(status).not_to_contain_text("前面还有 0 人")
    await expect(citizen.locator("#chat-human")).to_have_text("排队中")

    # 7. 留言 while queued: the message becomes a ticket and the citizen leaves the queue
    leave = citizen.locator("#chat-leave")
    await expect(leave).to_be_visible()
    await leave.click()
    await citizen.locator("#chat-leave-text").fill("请工作人员回电告知居住证办理进度，电话 13800138000")
    await shot(citizen, screenshots, "shift-chat-leave-message", full_page=False)
    await citizen.locator("#chat-leave-send").click()
    await expect(citizen.locator("#chat-leave-form")).to_be_hidden()
    done = citizen.locator("#chat-messages .msg[data-sender=system]").filter(has_text="您的留言已提交")
    await expect(done).to_have_count(1)
    ticket_no = re.search(r"工单号 (\d+)", await done.inner_text())
    assert ticket_no
    await expect(status).to_have_attribute("data-owner", "bot")
    engine = make_engine(system.database_url)
    try:
        async with engine.connect() as db:
            row = (await db.execute(select(Ticket).where(Ticket.id == int(ticket_no.group(1))))).one()
    finally:
        await engine.dispose()
    assert row.conversation_id == conv and "13800138000" in row.body

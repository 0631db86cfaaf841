"""The agent console's team features and the 班长看板 in a real browser.

Two agents (张敏 agent1, 李强 agent2) and a supervisor (赵磊 super1) in their own browser
contexts, a citizen on /chat in a fourth and a second citizen over the chat WebSocket:
both ask for 转人工; each agent accepts one; 张敏 转接 hers to 李强 with a memo and 李强
sees the memo; the board shows who serves what; the supervisor 监听 李强's conversation and
sends a 悄悄话 that 李强 sees and the citizen never does (neither on the page, nor in any
frame, nor after a reload); 李强 ends the conversation with a 处理结果 and the citizen gets
the 满意度评价 question; the supervisor 接管 the other conversation and ends it from the
console. Everything is asserted on what each person would look at (ids in hub/pages/*.html).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.conftest import RunningSystem
from tests.e2e.helpers import accept, ask_for_a_person, keep_frames, log_in, shot
from tests.support import ChatClient

pytestmark = pytest.mark.e2e

CAPACITY = 5  # config.yml handoff.agent_capacity
MEMO = "市民咨询居住证续签，已核实身份，需要户籍业务协助"
WHISPER = "提醒：先确认他的居住登记满半年再答复"
AGENT2_REPLY = "您好，我是李强，已看到张敏同事的备注，我来继续为您办理。"
SUMMARY = "已告知居住证续签所需材料和办理地点"
CSAT_QUESTION = "请您对本次服务进行评价"


def agent_row(board: Page, username: str):
    return board.locator(f'#board-agents tr.agent-row[data-username="{username}"]')


async def expect_serving(board: Page, username: str, conversations: list[str], absent: list[str] = ()) -> None:
    """The agent's row lists these conversations and its 当前接待/上限 matches the list."""
    row = agent_row(board, username)
    for cid in conversations:
        await expect(row.locator(f'li.a-conv[data-conversation-id="{cid}"]')).to_have_count(1)
    for cid in absent:
        await expect(row.locator(f'li.a-conv[data-conversation-id="{cid}"]')).to_have_count(0)
    load = await row.locator("li.a-conv").count()
    await expect(row.locator(".a-load")).to_have_text(f"{load}/{CAPACITY}")


async def test_transfer_memo_board_watch_whisper_disposition_and_take_over(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    # citizen A on /chat (worker 1), its every WebSocket frame kept; citizen B over the chat protocol
    citizen = await new_page(system.hub_urls[1])
    citizen_frames = keep_frames(citizen)
    agent1 = await new_page(system.hub_urls[0])
    agent2 = await new_page(system.hub_urls[1])
    boss = await new_page(system.hub_urls[0])

    # 1. both citizens ask for 转人工
    status, conv_a = await ask_for_a_person(citizen, citizen_frames)

    async with ChatClient(system.hub_urls[0]) as other:
        await other.send_frame({"type": "human"})
        await other.next_frame("state", where=lambda f: f["owner"] == "queued")
        conv_b = other.conversation_id
        assert conv_b and conv_b != conv_a

        # 2. 张敏 accepts A, 李强 accepts B; both start 在线
        await log_in(agent1, "agent1", "agent1pass")
        await expect(agent1.locator("#presence")).to_be_enabled()
        await expect(agent1.locator("#presence")).to_have_value("online")
        await accept(agent1, conv_a)
        await expect(status).to_have_text("人工客服 张敏 为您服务")
        await log_in(agent2, "agent2", "agent2pass")
        await expect(agent2.locator("#presence")).to_have_value("online")
        await accept(agent2, conv_b)

        # 3. 张敏 转接 A to 李强 with a memo, in the page's own dialog
        dialog = agent1.locator("#transfer-dialog")
        await expect(dialog).to_be_hidden()
        await agent1.locator("#transfer-conv").click()
        await expect(dialog).to_be_visible()
        li_qiang = agent1.locator('#transfer-target option[value="agent:agent2"]')
        await expect(li_qiang).to_have_text(re.compile(r"^李强（在线，接待 \d+/5）$"))
        await expect(agent1.locator('#transfer-target option[value="group:户籍"]')).to_have_text(
            "户籍技能组（排到队首）"
        )
        await expect(agent1.locator("#transfer-ok")).to_be_disabled()  # nobody chosen yet
        await agent1.locator("#transfer-target").select_option("agent:agent2")
        await agent1.locator("#transfer-memo").fill(MEMO)
        await shot(agent1, screenshots, "console-transfer-dialog")
        await agent1.locator("#transfer-ok").click()
        await expect(dialog).to_be_hidden()
        tab_a1 = agent1.locator(f'#my-convs .conv-tab[data-conversation-id="{conv_a}"]')
        await expect(tab_a1).to_have_attribute("data-ended", "true")
        await expect(agent1.locator("#conv-state")).to_have_text("已转接给 李强")
        await expect(agent1.locator("#reply-input")).to_be_disabled()
        # the citizen is told and now sees 李强
        await expect(citizen.locator("#chat-messages .msg[data-sender=system]").last).to_have_text(
            re.compile("已为您转接到人工客服 李强")
        )
        await expect(status).to_have_text("人工客服 李强 为您服务")

        # 4. 李强 gets A as a new tab (B stays open) and sees the memo at the top of the transcript
        tab_a2 = agent2.locator(f'#my-convs .conv-tab[data-conversation-id="{conv_a}"]')
        await expect(tab_a2).to_be_visible()
        await expect(agent2.locator(f'#my-convs .conv-tab[data-conversation-id="{conv_b}"]')).to_have_attribute(
            "aria-selected", "true"
        )
        await expect(tab_a2.locator("[data-testid=unread]")).to_be_visible()  # draws his eye
        await tab_a2.click()
        transcript2 = agent2.locator("#transcript")
        memo = transcript2.locator(".transfer-memo")
        await expect(memo).to_have_count(1)
        await expect(memo.locator(".tm-text")).to_have_text(MEMO)
        await expect(memo.locator(".tm-from")).to_have_text("来自 张敏")
        first_child_is_memo = await transcript2.evaluate("t => t.firstElementChild.classList.contains('transfer-memo')")
        assert first_child_is_memo
        await shot(agent2, screenshots, "console-transfer-memo")

        # 5. the board: both agents 在线, who serves what, 当前接待/上限
        await log_in(boss, "super1", "super1pass", landing="/supervisor")
        await expect(boss).to_have_title("班长看板 - 政务云客服")
        await expect(boss.locator("#agent-name")).to_have_text("赵磊")
        queues = boss.locator("#board-queues")
        await expect(queues.locator("thead th")).to_have_text(
            ["技能组", "排队数", "最长等待", "平均等待", "平均处理时长"]
        )
        await expect(queues.locator('tr.queue-row[data-group="综合"]')).to_have_count(1)
        await expect(queues.locator('tr.queue-row[data-group="户籍"]')).to_have_count(1)
        agents = boss.locator("#board-agents")
        await expect(agents.locator("thead th").first).to_have_text("坐席")
        await expect(agent_row(boss, "agent1").locator(".a-display")).to_have_text("张敏")
        await expect(agent_row(boss, "agent1").locator(".a-status")).to_have_text("在线")
        await expect(agent_row(boss, "agent2").locator(".a-display")).to_have_text("李强")
        await expect(agent_row(boss, "agent2").locator(".a-status")).to_have_text("在线")
        await expect_serving(boss, "agent2", [conv_a, conv_b])
        await expect_serving(boss, "agent1", [], absent=[conv_a, conv_b])
        await shot(boss, screenshots, "supervisor-board")

        # presence: 张敏 goes 离开 and the board follows; then back to 在线
        await agent1.locator("#presence").select_option("away")
        await expect(agent_row(boss, "agent1").locator(".a-status")).to_have_text("离开")
        await expect(agent1.locator("#presence")).to_have_value("away")
        await agent1.locator("#presence").select_option("online")
        await expect(agent_row(boss, "agent1").locator(".a-status")).to_have_text("在线")

        # 6. 监听 李强's conversation A: the live transcript in the side panel
        await agent_row(boss, "agent2").locator(f'li.a-conv[data-conversation-id="{conv_a}"] .watch-btn').click()
        watch = boss.locator("#watch-transcript")
        await expect(watch).to_be_visible()
        await expect(watch.locator(".transfer-memo .tm-text")).to_have_text(MEMO)
        await expect(
            watch.locator(".msg[data-sender=system]").filter(has_text="已为您转接到人工客服 李强")
        ).to_have_count(1)
        await expect(boss.locator("#watch-title")).to_contain_text("李强")

        # 悄悄话: 李强 sees it as a private note, the supervisor sees it in the panel
        await expect(boss.locator("#whisper-send")).to_be_disabled()
        await boss.locator("#whisper-input").fill(WHISPER)
        await boss.locator("#whisper-send").click()
        await expect(boss.locator("#whisper-input")).to_have_value("")
        await expect(watch.locator(".msg.whisper .msg-text")).to_have_text(WHISPER)
        note = transcript2.locator(".msg.whisper")
        await expect(note).to_have_count(1)
        await expect(note.locator(".msg-text")).to_have_text(WHISPER)
        await expect(note.locator(".msg-name")).to_have_text("赵磊")
        await expect(note).to_contain_text("仅坐席可见")
        await shot(agent2, screenshots, "console-whisper")

        # 李强 answers; the supervisor's panel follows live and the citizen gets the answer
        await agent2.locator("#reply-input").fill(AGENT2_REPLY)
        await agent2.locator("#reply-send").click()
        await expect(transcript2.locator(".msg[data-sender=agent]").filter(has_text=AGENT2_REPLY)).to_have_attribute(
            "data-id", re.compile(r".+")
        )
        await expect(watch.locator(".msg[data-sender=agent] .msg-text")).to_have_text(AGENT2_REPLY)
        from_agent = citizen.locator("#chat-messages .msg[data-sender=agent]")
        await expect(from_agent.filter(has_text=AGENT2_REPLY)).to_have_count(1)
        await shot(boss, screenshots, "supervisor-watch")

        # the citizen never sees the whisper: not on the page, not in any frame, not after a reload
        await expect(citizen.locator("#chat-messages")).not_to_contain_text(WHISPER)
        assert not [f for f in citizen_frames if WHISPER in f]
        await citizen.reload()
        await expect(status).to_have_text("人工客服 李强 为您服务")
        await expect(
            citizen.locator("#chat-messages .msg[data-sender=agent]").filter(has_text=AGENT2_REPLY)
        ).to_have_count(1)
        await expect(citizen.locator("#chat-messages")).not_to_contain_text(WHISPER)
        assert not [f for f in citizen_frames if WHISPER in f]

        # 7. 李强 ends A with a 处理结果 and a summary, in the page's own dialog
        close_dialog = agent2.locator("#close-dialog")
        await agent2.locator("#close-conv").click()
        await expect(close_dialog).to_be_visible()
        await expect(agent2.locator("#close-disposition")).to_have_value("resolved")
        await expect(agent2.locator("#close-disposition option")).to_have_text(
            ["已解决", "未解决", "已转工单", "市民已离开", "无效咨询", "其他"]
        )
        await agent2.locator("#close-disposition").select_option("resolved")
        await agent2.locator("#close-summary").fill(SUMMARY)
        await shot(agent2, screenshots, "console-close-dialog")
        await agent2.locator("#close-ok").click()
        await expect(close_dialog).to_be_hidden()
        await expect(agent2.locator("#conv-state")).to_have_text("会话已结束")
        await expect(tab_a2).to_have_attribute("data-ended", "true")
        # the citizen: back to the bot, asked for a 满意度评价
        await expect(citizen.locator("#chat-messages")).to_contain_text(CSAT_QUESTION)
        await expect(status).to_have_attribute("data-owner", "bot")
        # the board: A left 李强; the panel says the conversation is no longer served
        await expect_serving(boss, "agent2", [conv_b], absent=[conv_a])
        await expect(watch).to_contain_text("该会话已不在坐席手中")
        await expect(boss.locator("#whisper-send")).to_be_disabled()
        assert not [f for f in citizen_frames if WHISPER in f]

        # 8. the supervisor 接管 B (a second click confirms): 李强 loses it, 赵磊 serves it on the console
        takeover = agent_row(boss, "agent2").locator(f'li.a-conv[data-conversation-id="{conv_b}"] .takeover-btn')
        await takeover.click()
        await expect(takeover).to_have_text("确认接管？")
        await takeover.click()
        tab_b2 = agent2.locator(f'#my-convs .conv-tab[data-conversation-id="{conv_b}"]')
        await expect(tab_b2).to_have_attribute("data-ended", "true")
        await expect(boss.locator("#takeover-banner")).to_contain_text("您正在亲自服务 1 个会话")
        await expect_serving(boss, "super1", [conv_b])
        await expect_serving(boss, "agent2", [], absent=[conv_b])
        # citizen B (frames are read in order: first 李强's 接入, then the take-over) now sees 赵磊
        await other.next_frame("state", where=lambda f: f["owner"] == "agent" and f["agent_name"] == "李强")
        await other.next_frame("state", where=lambda f: f["owner"] == "agent" and f["agent_name"] == "赵磊")

        await boss.locator("#takeover-banner a").click()
        await boss.wait_for_url(re.compile(r"/agent$"))
        tab_b = boss.locator(f'#my-convs .conv-tab[data-conversation-id="{conv_b}"]')
        await tab_b.click()
        await expect(boss.locator("#conv-state")).to_have_text("服务中")
        await boss.locator("#close-conv").click()
        await boss.locator("#close-disposition").select_option("other")
        await boss.locator("#close-ok").click()
        await expect(tab_b).to_have_attribute("data-ended", "true")
        survey = await other.next_frame("message", where=lambda f: (f["message"].get("meta") or {}).get("csat"))
        assert CSAT_QUESTION in survey["message"]["text"]
        assert not [f for f in other.frames if WHISPER in json.dumps(f, ensure_ascii=False)]


async def test_the_board_is_for_supervisors_only(system: RunningSystem, new_page) -> None:
    page = await new_page(system.hub_url)
    await log_in(page, "agent1", "agent1pass")
    await expect(page.locator("#nav-supervisor")).to_be_hidden()
    reply = await page.goto("/supervisor")
    assert reply is not None and reply.status == 403
    await expect(page.locator("body")).to_contain_text("无权访问")

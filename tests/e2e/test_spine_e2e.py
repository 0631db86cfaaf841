"""The spine in a real browser: a citizen on /chat, an agent on /agent, the KB editor on /kb.

Everything a user would check is asserted on what the pages show (element ids are listed
in hub/pages/*.html); expected KB answers are read from the demo KB file the system was
seeded with, and the questions are paraphrases from kb_sync/demo/queries.jsonl that are
not themselves in the KB.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from core.config import load_settings
from core.secrets import public_visitor_id
from tests.conftest import RunningSystem
from tests.e2e.helpers import log_in, log_in_on_the_login_page, open_chat, shot, submit_login
from tests.support import ROOT

pytestmark = pytest.mark.e2e

DEMO = ROOT / "kb_sync" / "demo"
KB = {entry["id"]: entry for entry in map(json.loads, (DEMO / "kb.jsonl").read_text(encoding="utf-8").splitlines())}
QUERIES = [json.loads(line) for line in (DEMO / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line]

FIRST_QUESTION = "居住证每年都要去签一次吗"  # → D002 居住证到期了怎么续签？ (its answer is about 签注)
SECOND_QUESTION = "我爸刚退休，他公积金里的钱能全部拿出来吗"  # → D042
AGENT_REPLY = "您好，我是张敏。居住证签注请带上居住证和身份证到居住地派出所办理。"
CITIZEN_FOLLOW_UP = "好的，谢谢您"
BOT_ANSWER_TIMEOUT_MS = 45_000  # a KB answer goes hub → Rasa → action server → retrieval → hub


def expected_entry(question: str) -> dict:
    """The KB entry a paraphrase from queries.jsonl should be answered with; checks it is a real paraphrase."""
    query = next(q for q in QUERIES if q["text"] == question)
    assert query["kind"] == "paraphrase" and query["expected"], query
    entry = KB[query["expected"]]
    assert question != entry["question"] and question not in entry["similar"], "not a paraphrase: it is in kb.jsonl"
    for other in KB.values():
        assert question != other["question"] and question not in other["similar"]
    return entry


async def open_chat_with_the_bot(page: Page) -> None:
    status = await open_chat(page)  # welcome received
    await expect(page).to_have_title("弥勒市政务服务中心 在线咨询")
    await expect(status).to_have_text("智能客服")


async def ask(page: Page, question: str) -> tuple[str, str | None]:
    """Type a question, send it, and wait for the bot's reply; returns (reply text, its conversation id)."""
    bot = page.locator("#chat-messages .msg[data-sender=bot]")
    before = await bot.count()
    await page.locator("#chat-input").fill(question)
    await expect(page.locator("#chat-send")).to_be_enabled()
    await page.locator("#chat-send").click()
    await expect(page.locator("#chat-input")).to_have_value("")
    mine = page.locator("#chat-messages .msg[data-sender=citizen]").filter(has_text=question).last
    await expect(mine).to_have_attribute("data-state", "sent")  # acknowledged: stored by the hub
    await expect(bot).to_have_count(before + 1, timeout=BOT_ANSWER_TIMEOUT_MS)
    reply = bot.last
    await expect(reply.locator(".msg-name")).to_have_text("智能客服")
    return await reply.locator(".msg-text").inner_text(), await reply.get_attribute("data-conversation-id")


async def open_kb_as_editor(page: Page) -> None:
    """/kb without a session goes to the login page, which comes back to /kb."""
    await log_in(page, "editor1", "editor1pass", landing="/kb")
    await expect(page.locator("#agent-name")).to_have_text("王芳")


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


async def test_citizen_bot_queue_agent_and_back_to_the_bot(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    first, second = expected_entry(FIRST_QUESTION), expected_entry(SECOND_QUESTION)
    assert "签注" in first["answer"]
    # citizen on worker 1, agent on worker 0: every live update crosses workers through Redis
    citizen = await new_page(system.hub_urls[1])
    agent = await new_page(system.hub_urls[0])

    # 1. the citizen asks a paraphrase and the bot answers from the KB
    await open_chat_with_the_bot(citizen)
    answer, conversation_id = await ask(citizen, FIRST_QUESTION)
    assert normalise(answer) == normalise(first["answer"]), f"expected the answer of {first['id']}, got: {answer}"
    assert conversation_id
    visitor_id = await citizen.evaluate("localStorage.getItem('zwkf_visitor_id')")
    assert visitor_id
    await shot(citizen, screenshots, "chat-bot-answer")

    # 2. 转人工: the citizen sees the queue status
    human = citizen.locator("#chat-human")
    await expect(human).to_have_text("转人工")
    await human.click()
    status = citizen.locator("#chat-status")
    await expect(status).to_have_attribute("data-owner", "queued")
    # who is ahead (or 您是下一位) and the hub's estimated wait
    await expect(status).to_have_text(re.compile(r"^排队中，(您前面还有 \d+ 人|您是下一位)，预计等待"))
    position = int(await status.get_attribute("data-queue-position"))
    assert position >= 1
    ahead = f"您前面还有 {position - 1} 人" if position > 1 else "您是下一位"
    await expect(status).to_have_text(re.compile(f"^排队中，{ahead}，预计等待(不到 1 分钟|约 \\d+ 分钟)$"))
    await expect(human).to_have_text("排队中")
    await expect(human).to_be_disabled()
    await shot(citizen, screenshots, "chat-queued")

    # 3. an agent logs in and finds the conversation in the queue
    await log_in_on_the_login_page(agent, "agent1", "agent1pass")
    await expect(agent).to_have_title(re.compile("坐席工作台"))
    await expect(agent.locator("#agent-name")).to_have_text("张敏")
    await expect(agent.locator("#conn-dot")).to_have_attribute("data-state", "online")
    item = agent.locator(f'#queue-list .queue-item[data-conversation-id="{conversation_id}"]')
    await expect(item).to_be_visible()
    await expect(item.locator(".qi-channel")).to_have_text("网页")
    await expect(item.locator(".qi-name")).to_have_text("访客")
    await shot(agent, screenshots, "agent-queue")

    # 4. 接入: the whole transcript, the bot's answer included, and the 客户信息 screen-pop
    await item.locator(".accept-btn").click()
    await expect(item).to_have_count(0)  # it left the queue
    tab = agent.locator(f'#my-convs .conv-tab[data-conversation-id="{conversation_id}"]')
    await expect(tab).to_have_attribute("aria-selected", "true")
    await expect(agent.locator("#conv-name")).to_have_text("访客")
    await expect(agent.locator("#conv-channel")).to_have_text("网页")
    await expect(agent.locator("#conv-state")).to_have_text("服务中")
    transcript = agent.locator("#transcript")
    citizen_lines = transcript.locator(".msg[data-sender=citizen] .msg-text")
    bot_lines = transcript.locator(".msg[data-sender=bot] .msg-text")
    await expect(citizen_lines.first).to_have_text(FIRST_QUESTION)
    await expect(bot_lines.first).to_have_text(first["answer"])
    order = await transcript.locator(".msg").evaluate_all("nodes => nodes.map(n => n.dataset.sender)")
    assert order.index("citizen") < order.index("bot"), order
    pop = agent.locator("#screen-pop")
    await expect(pop.locator(".panel-title")).to_have_text("客户信息")
    await expect(pop.locator("[data-testid=pop-channel]")).to_have_text("网页")
    # the citizen's public id: the credential their browser keeps is never shown (core.secrets.public_visitor_id)
    shown_id = public_visitor_id(load_settings().secret_key, visitor_id)
    await expect(pop.locator("[data-testid=pop-visitor]")).to_have_text(shown_id)
    assert shown_id != visitor_id
    await expect(pop.locator("[data-testid=pop-name]")).to_have_text("未知")  # an anonymous web visitor
    await expect(pop.locator("[data-testid=pop-phone]")).to_have_text("未知")
    await expect(pop.locator("[data-testid=pop-tags]")).to_have_text("暂无")
    await expect(pop.get_by_role("heading", name="历史会话（0）")).to_be_visible()
    await expect(pop.get_by_role("heading", name="未完结工单（0）")).to_be_visible()
    await shot(agent, screenshots, "agent-accepted")

    # the citizen sees who is serving them
    await expect(status).to_have_attribute("data-owner", "agent")
    await expect(status).to_have_text("人工客服 张敏 为您服务")
    await expect(human).to_have_text("人工服务中")

    # 5. the agent replies; the citizen sees it with the agent's name
    await agent.locator("#reply-input").fill(AGENT_REPLY)
    await agent.locator("#reply-send").click()
    await expect(agent.locator("#reply-input")).to_have_value("")
    sent = transcript.locator(".msg[data-sender=agent]").filter(has_text=AGENT_REPLY)
    await expect(sent).to_have_count(1)
    await expect(sent).to_have_attribute("data-id", re.compile(r".+"))  # confirmed by the hub, not "发送中…"
    from_agent = citizen.locator("#chat-messages .msg[data-sender=agent]")
    await expect(from_agent).to_have_count(1)
    await expect(from_agent.locator(".msg-text")).to_have_text(AGENT_REPLY)
    await expect(from_agent.locator(".msg-name")).to_have_text("张敏")

    # while the agent owns the conversation the citizen's words go to the agent, not the bot
    bot_before = await citizen.locator("#chat-messages .msg[data-sender=bot]").count()
    await citizen.locator("#chat-input").fill(CITIZEN_FOLLOW_UP)
    await citizen.locator("#chat-send").click()
    forwarded = transcript.locator(".msg[data-sender=citizen] .msg-text").filter(has_text=CITIZEN_FOLLOW_UP)
    await expect(forwarded).to_have_count(1)
    await shot(citizen, screenshots, "chat-agent-reply")

    # 6. 结束会话
    await agent.locator("#close-conv").click()
    await agent.locator("#close-ok").click()  # the 结束会话 dialog: disposition 已解决 by default
    await expect(agent.locator("#conv-state")).to_have_text("会话已结束")
    await expect(agent.locator("#reply-input")).to_be_disabled()
    await expect(tab).to_have_attribute("data-ended", "true")
    await expect(status).to_have_attribute("data-owner", "bot")
    await expect(status).to_have_text("智能客服")
    await expect(human).to_have_text("转人工")
    await expect(human).to_be_enabled()
    assert await citizen.locator("#chat-messages .msg[data-sender=bot]").count() == bot_before  # the bot stayed silent
    await shot(agent, screenshots, "agent-closed")

    # 7. the bot answers the next KB question, in a new conversation
    answer2, conversation2 = await ask(citizen, SECOND_QUESTION)
    assert normalise(answer2) == normalise(second["answer"]), f"expected the answer of {second['id']}, got: {answer2}"
    assert conversation2 and conversation2 != conversation_id
    await expect(citizen.locator("#chat-messages .msg[data-sender=agent]")).to_have_count(1)  # the old reply stays
    await expect(transcript.locator(".msg-text").filter(has_text=SECOND_QUESTION)).to_have_count(0)  # not the agent's
    await shot(citizen, screenshots, "chat-back-to-bot")


async def test_reload_shows_the_same_conversation(system: RunningSystem, new_page, screenshots: Path) -> None:
    entry = expected_entry("我的身份证今年到期，换证要拍照吗")
    page = await new_page(system.hub_url)
    await open_chat_with_the_bot(page)
    answer, conversation_id = await ask(page, "我的身份证今年到期，换证要拍照吗")
    assert normalise(answer) == normalise(entry["answer"])
    messages = page.locator("#chat-messages .msg")
    before = await messages.evaluate_all(
        "nodes => nodes.map(n => [n.dataset.sender, n.dataset.id, n.querySelector('.msg-text').textContent])"
    )
    visitor_id = await page.evaluate("localStorage.getItem('zwkf_visitor_id')")

    await page.reload()
    await expect(page.locator("#chat-status")).to_have_attribute("data-owner", "bot")
    await expect(messages).to_have_count(len(before))
    after = await messages.evaluate_all(
        "nodes => nodes.map(n => [n.dataset.sender, n.dataset.id, n.querySelector('.msg-text').textContent])"
    )
    assert after == before
    assert [sender for sender, _, _ in after] == ["citizen", "bot"]
    assert await page.evaluate("localStorage.getItem('zwkf_visitor_id')") == visitor_id
    await expect(page.locator("#chat-messages .msg[data-sender=bot]").last).to_have_attribute(
        "data-conversation-id", conversation_id
    )
    await shot(page, screenshots, "chat-reloaded")


async def test_a_wrong_password_is_refused_in_chinese_and_the_console_needs_a_login(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    page = await new_page(system.hub_url)
    await page.goto("/agent")
    await page.wait_for_url(re.compile(r"/login\?next=(%2F|/)agent$"))
    await expect(page.locator("#login-form h1")).to_have_text("坐席登录")
    error = page.locator("#login-error")
    await expect(error).to_be_hidden()

    await submit_login(page, "agent1", "not-the-password")
    await expect(error).to_be_visible()
    await expect(error).to_have_text("用户名或密码错误。")
    await expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)agent$"))
    await expect(page.locator("#login-submit")).to_be_enabled()
    await shot(page, screenshots, "login-error")

    # an unknown account gets the same answer (no account enumeration)
    await submit_login(page, "nobody", "whatever")
    await expect(error).to_have_text("用户名或密码错误。")

    # the right password then follows ?next= back to the console
    await submit_login(page, "agent2", "agent2pass")
    await page.wait_for_url(re.compile(r"/agent$"))
    await expect(page.locator("#agent-name")).to_have_text("李强")


async def test_the_kb_list_shows_the_demo_entries_and_search_narrows_them(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    page = await new_page(system.hub_url)
    await open_kb_as_editor(page)
    await expect(page).to_have_title("知识库 - 政务云客服")
    rows = page.locator("#kb-table [data-testid=kb-row]")
    await expect(rows).to_have_count(len(KB))  # the whole seeded demo KB
    assert len(KB) >= 80
    await expect(page.locator("#kb-total")).to_have_text(f"共 {len(KB)} 条")
    shown = await rows.evaluate_all("rows => rows.map(r => r.dataset.entryId)")
    assert sorted(shown) == sorted(KB)
    d002 = rows.filter(has=page.locator("td.q", has_text=KB["D002"]["question"]))
    await expect(d002.locator("td.branch")).to_have_text(KB["D002"]["branch"])
    await expect(d002.locator("td.num")).to_have_text(str(len(KB["D002"]["similar"])))
    await expect(d002).to_contain_text("已发布")
    await shot(page, screenshots, "kb-list")

    # search narrows the list to the entries that mention the term (the box promises 标准问题、相似问法或答案)
    box = page.locator("#kb-search")
    await expect(box).to_have_attribute("placeholder", "搜索全部知识分类的标准问题、相似问法或答案")
    assert not any("护照" in e["branch"] for e in KB.values())
    await page.locator("#kb-search").fill("护照")
    expected = sorted(
        e["id"] for e in KB.values() if any("护照" in field for field in (e["question"], e["answer"], *e["similar"]))
    )
    assert 0 < len(expected) < len(KB)
    await expect(rows).to_have_count(len(expected))
    await expect(page.locator("#kb-total")).to_have_text(f"共 {len(expected)} 条")
    assert sorted(await rows.evaluate_all("rows => rows.map(r => r.dataset.entryId)")) == expected
    await shot(page, screenshots, "kb-search")

    await page.locator("#kb-search").fill("量子纠缠")
    await expect(rows).to_have_count(0)
    await expect(page.locator("#kb-rows")).to_have_text("没有符合条件的知识条目")

    await page.locator("#kb-search").fill("")
    await expect(rows).to_have_count(len(KB))


async def test_the_kb_search_finds_an_entry_by_one_of_its_similar_questions(system: RunningSystem, new_page) -> None:
    page = await new_page(system.hub_url)
    await open_kb_as_editor(page)
    await expect(page.locator("#kb-search")).to_have_attribute("placeholder", re.compile("相似问法"))
    rows = page.locator("#kb-table [data-testid=kb-row]")
    await expect(rows).to_have_count(len(KB))
    # "居住证年审怎么弄" is a similar question of D002 only; "年审" is in no question, answer or branch
    assert [e["id"] for e in KB.values() if any("年审" in s for s in e["similar"])] == ["D002"]
    await page.locator("#kb-search").fill("年审")
    await expect(rows).to_have_count(1, timeout=5_000)
    await expect(rows).to_have_attribute("data-entry-id", "D002")


async def test_a_kb_editor_logging_in_lands_on_a_page_they_may_use(system: RunningSystem, new_page) -> None:
    page = await new_page(system.hub_url)
    await log_in_on_the_login_page(page, "editor1", "editor1pass", lands_on=r"/(agent|kb)")
    await expect(page.locator("body")).not_to_contain_text("无权访问", timeout=5_000)
    await expect(page.locator("#agent-name")).to_have_text("王芳")

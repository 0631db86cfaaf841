"""The agent console's working tools in a real browser, against the whole system (real Rasa,
two hub workers, the demo KB and 快捷回复):

a citizen on /chat (worker 2) asks for 转人工; the waiting count shows in 张敏's title bar
(worker 1); she accepts; the citizen asks about 居住证 and 智能推荐 offers the KB answer, which
one click puts in the reply box; typing shows on both sides; a 内部备注 is shown to her
(and after a reload) and never to the citizen; "/hi" finds the shared 问候 and fills in the
citizen's name and hers; the citizen's picture shows as a thumbnail that opens full size; after
a reload everything is still there; a second citizen's message in a background tab shows as
unread in the tab and in the title bar. Also: 快捷回复 kept in the console's own dialog (shared
ones by the supervisor), and a console whose socket drops (reconnects refused for a while)
shows, once back, every message the citizen sent meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.conftest import RunningSystem
from tests.e2e.helpers import accept, ask_for_a_person, keep_frames, log_in, shot
from tests.support import ChatClient

pytestmark = pytest.mark.e2e

BASE_TITLE = "坐席工作台 - 政务云客服"
NOTE = "市民第二次来电询问，已核实身份，勿再索要证件号"
QUESTION = "办居住证要带什么材料"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201"
    "e2d4c83a0000000049454e44ae426082"
)


async def test_assist_typing_notes_canned_replies_and_images(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    citizen = await new_page(system.hub_urls[1])
    citizen_frames = keep_frames(citizen)
    agent = await new_page(system.hub_urls[0])
    agent_frames = keep_frames(agent)

    await log_in(agent, "agent1", "agent1pass")
    await expect_title_counts(agent, unread=0)

    # 1. the citizen asks for a person: new work shows in the agent's title bar
    status, conv = await ask_for_a_person(citizen, citizen_frames)
    await expect(agent).to_have_title(re.compile(r"^\(\d+\) " + re.escape(BASE_TITLE) + "$"))
    await accept(agent, conv)
    await expect(status).to_have_text("人工客服 张敏 为您服务")

    # the citizen's name goes into the profile (the CRM API the 客户信息 panel uses)
    assigned = next(
        json.loads(f) for f in agent_frames if '"assigned"' in f and json.loads(f).get("conversation_id") == conv
    )
    citizen_id = assigned["screen_pop"]["citizen"]["id"]
    csrf = next(c["value"] for c in await agent.context.cookies() if c["name"] == "zwkf_csrf")  # as the page sends it
    named = await agent.request.patch(
        f"/api/crm/citizens/{citizen_id}", data={"name": "王小明"}, headers={"X-CSRF-Token": csrf}
    )
    assert named.ok

    # 2. the citizen types: 张敏 sees it; then asks, and 智能推荐 offers the 居住证 entry
    await citizen.locator("#chat-input").press_sequentially("办居住证")
    await expect(agent.locator("#citizen-typing")).to_be_visible()
    await expect(agent.locator("#citizen-typing")).to_have_text(re.compile("市民正在输入"))
    await citizen.locator("#chat-input").fill(QUESTION)
    await citizen.locator("#chat-send").click()
    transcript = agent.locator("#transcript")
    await expect(transcript.locator(".msg[data-sender=citizen]").filter(has_text=QUESTION)).to_have_count(1)
    await expect(agent.locator("#citizen-typing")).to_be_hidden()
    suggestion = agent.locator("#assist-list .assist-item").filter(has_text="居住证怎么办理")
    await expect(suggestion).to_have_count(1)
    await expect(agent.locator("#assist-for")).to_contain_text(QUESTION)
    answer = (await suggestion.locator(".ai-a").text_content() or "").strip()
    assert "居住" in answer
    await shot(agent, screenshots, "console-assist")
    await suggestion.locator("[data-testid=assist-insert]").click()
    await expect(agent.locator("#reply-input")).to_have_value(answer)

    # the agent's typing reaches the citizen's page (the same indicator the bot's typing uses)
    await expect(citizen.locator("#chat-typing")).to_have_attribute("data-sender", "agent")
    await expect(citizen.locator("#chat-typing")).to_be_visible()
    await agent.locator("#reply-send").click()
    from_agent = citizen.locator("#chat-messages .msg[data-sender=agent]")
    await expect(from_agent.filter(has_text=answer[:20])).to_have_count(1)
    await expect(citizen.locator("#chat-typing")).to_be_hidden()

    # 3. an internal note: on the agent's screen, marked, never on the citizen's
    await agent.locator("#mode-note").click()
    await expect(agent.locator("#reply-send")).to_have_text("添加备注")
    await agent.locator("#reply-input").fill(NOTE)
    await agent.locator("#reply-send").click()
    note = transcript.locator(".msg.note")
    await expect(note).to_have_count(1)
    await expect(note.locator(".msg-text")).to_have_text(NOTE)
    await expect(note).to_contain_text("仅坐席可见")
    await expect(note.locator(".msg-name")).to_have_text("张敏")
    await expect(agent.locator("#reply-input")).to_have_value("")
    await shot(agent, screenshots, "console-note")
    await agent.locator("#mode-reply").click()
    await expect(agent.locator("#reply-send")).to_have_text("发送")

    # 4. 快捷回复: "/" opens the list, "/hi" narrows it, Enter inserts it with the names filled in
    reply = agent.locator("#reply-input")
    await reply.press_sequentially("/")
    panel = agent.locator("#canned-panel")
    await expect(panel).to_be_visible()
    for shortcut in ("hi", "wait", "bye"):  # the whole list, seeded shared ones among them
        await expect(panel.locator(f'.canned-item[data-shortcut="{shortcut}"]')).to_have_count(1)
    await reply.press_sequentially("hi")
    await expect(panel.locator(".canned-item").first).to_have_attribute("data-shortcut", "hi")
    greeting = "王小明，您好！我是人工客服张敏，很高兴为您服务，请问有什么可以帮您？"
    await expect(panel.locator(".canned-item").first.locator(".ci-text")).to_have_text(greeting)
    await shot(agent, screenshots, "console-canned")
    await reply.press("Enter")
    await expect(panel).to_be_hidden()
    await expect(reply).to_have_value(greeting)
    await reply.press("Enter")
    await expect(from_agent.filter(has_text=greeting)).to_have_count(1)

    # 5. the citizen's picture: a thumbnail in the console that opens the full-size image
    await citizen.locator("#chat-file").set_input_files(
        files=[{"name": "户口本.png", "mimeType": "image/png", "buffer": PNG_1PX}]
    )
    thumb = transcript.locator(".msg[data-sender=citizen] a.msg-image")
    await expect(thumb).to_have_count(1)
    href = await thumb.get_attribute("href")
    assert href and href.startswith("/api/web/uploads/") and await thumb.get_attribute("target") == "_blank"
    await expect(thumb.locator("img")).to_have_attribute("alt", "户口本.png")
    await agent.wait_for_function(
        "() => { const i = document.querySelector('#transcript a.msg-image img');"
        " return !!i && i.complete && i.naturalWidth > 0; }"
    )
    full = await agent.request.get(href)
    assert full.ok and full.headers["content-type"] == "image/png"
    # a PDF: a download link with its name and size
    pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    await citizen.locator("#chat-file").set_input_files(
        files=[{"name": "办事指南.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    link = transcript.locator(".msg[data-sender=citizen] a.msg-file")
    await expect(link.locator(".file-name")).to_have_text("办事指南.pdf")
    await expect(link.locator(".file-size")).to_have_text("1 KB")
    await expect(link).to_have_attribute("download", "办事指南.pdf")

    # the note was never shown to the citizen, nor sent in any frame, nor after a reload
    await expect(citizen.locator("#chat-messages")).not_to_contain_text(NOTE)
    await citizen.reload()
    await expect(citizen.locator("#chat-messages .msg[data-sender=agent]").filter(has_text=greeting)).to_have_count(1)
    await expect(citizen.locator("#chat-messages")).not_to_contain_text(NOTE)
    assert not [f for f in citizen_frames if NOTE in f]

    # the console reloads (a new socket): the note, the picture and the replies are all still there
    await agent.reload()
    await expect(agent.locator("#conn-dot")).to_have_attribute("data-state", "online")
    await agent.locator(f'#my-convs .conv-tab[data-conversation-id="{conv}"]').click()
    await expect(transcript.locator(".msg.note .msg-text")).to_have_text(NOTE)
    await expect(transcript.locator("a.msg-image")).to_have_count(1)
    await expect(transcript.locator(".msg[data-sender=agent]").filter(has_text=greeting)).to_have_count(1)
    # 智能推荐 still answers the last question (a picture has nothing to suggest)
    await expect(agent.locator("#assist-list .assist-item").filter(has_text="居住证怎么办理")).to_have_count(1)
    await shot(agent, screenshots, "console-features")

    # 6. a second citizen: their message in a background tab counts as unread, in the tab and the title
    async with ChatClient(system.hub_urls[0]) as other:
        await other.send_frame({"type": "human"})
        await other.next_frame("state", where=lambda f: f["owner"] == "queued")
        await expect_title_counts(agent, unread=0, waiting_at_least=1)
        await accept(agent, other.conversation_id)
        await expect_title_counts(agent, unread=0)
        tab_a = agent.locator(f'#my-convs .conv-tab[data-conversation-id="{conv}"]')
        tab_b = agent.locator(f'#my-convs .conv-tab[data-conversation-id="{other.conversation_id}"]')
        await tab_a.click()
        await other.say("我还想问一下社保卡的事")
        await expect(tab_b.locator("[data-testid=unread]")).to_have_text("1")
        await expect_title_counts(agent, unread=1)
        await tab_b.click()
        await expect(tab_b.locator("[data-testid=unread]")).to_have_count(0)
        await expect_title_counts(agent, unread=0)
        await agent.locator("#close-conv").click()
        await agent.locator("#close-ok").click()
        await expect(agent.locator("#conv-state")).to_have_text("会话已结束")
    await tab_a.click()
    await agent.locator("#close-conv").click()
    await agent.locator("#close-ok").click()
    await expect(agent.locator("#conv-state")).to_have_text("会话已结束")


async def test_canned_responses_are_managed_in_the_console(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    page = await new_page(system.hub_url)
    await log_in(page, "super1", "super1pass")
    dialog = page.locator("#canned-dialog")
    await page.locator("#nav-canned").click()
    await expect(dialog).to_be_visible()
    items = dialog.locator("#canned-manage-list .canned-manage-item")
    await expect(items.filter(has=page.locator(".ci-shortcut", has_text="/hi"))).to_have_count(1)
    await expect(page.locator('#canned-scope option[value="shared"]')).to_be_enabled()  # a supervisor's

    # a bad variable is refused in Chinese and nothing is added
    before = await items.count()
    await page.locator("#canned-scope").select_option("shared")
    await page.locator("#canned-shortcut").fill("jz")
    await page.locator("#canned-title-input").fill("居住证材料")
    await page.locator("#canned-text").fill("{姓名}，请携带身份证和{材料}。")
    await page.locator("#canned-save").click()
    await expect(page.locator("#canned-error")).to_have_text("不支持的变量 {材料}，可用变量：{姓名}、{坐席}、{日期}。")
    await expect(items).to_have_count(before)
    await page.locator("#canned-text").fill("{姓名}，请携带身份证和住所证明。")
    await page.locator("#canned-save").click()
    added = items.filter(has=page.locator(".ci-shortcut", has_text="/jz"))
    await expect(added).to_have_count(1)
    await expect(added.locator(".tag")).to_have_text("公共")
    await shot(page, screenshots, "console-canned-manage")

    # edit, then delete (a second click confirms)
    await added.locator("[data-testid=canned-edit]").click()
    await expect(page.locator("#canned-scope")).to_be_disabled()
    await page.locator("#canned-title-input").fill("居住证所需材料")
    await page.locator("#canned-save").click()
    await expect(added.locator(".ci-title")).to_have_text("居住证所需材料")
    delete = added.locator("[data-testid=canned-delete]")
    await delete.click()
    await expect(delete).to_have_text("确认删除？")
    await delete.click()
    await expect(added).to_have_count(0)
    await page.locator("#canned-close").click()
    await expect(dialog).to_be_hidden()

    # an agent may keep personal ones only
    agent = await new_page(system.hub_url)
    await log_in(agent, "agent2", "agent2pass")
    await agent.locator("#nav-canned").click()
    await expect(agent.locator('#canned-scope option[value="shared"]')).to_be_disabled()
    shared = agent.locator("#canned-manage-list .canned-manage-item").filter(has_text="/hi")
    await expect(shared.locator("[data-testid=canned-edit]")).to_have_count(0)


KEEP_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""


async def test_a_dropped_console_socket_misses_nothing(system: RunningSystem, new_context) -> None:
    context = await new_context(system.hub_urls[0])
    await context.add_init_script(KEEP_SOCKETS)
    agent = await context.new_page()
    await log_in(agent, "agent2", "agent2pass")
    async with ChatClient(system.hub_urls[1]) as citizen:
        await citizen.send_frame({"type": "human"})
        await citizen.next_frame("state", where=lambda f: f["owner"] == "queued")
        await accept(agent, citizen.conversation_id)

        # the socket drops and new ones are refused for a while; the citizen keeps writing meanwhile
        network = {"up": False, "refused": 0}

        async def agent_socket(route) -> None:  # noqa: ANN001
            if network["up"]:
                route.connect_to_server()
            else:
                network["refused"] += 1
                await route.close()

        await agent.route_web_socket(re.compile(r"/ws/agent$"), agent_socket)
        await agent.evaluate("window.__sockets.forEach((s) => s.close())")
        await expect(agent.locator("#conn-dot")).to_have_attribute("data-state", "offline")
        await expect(agent.locator("#conn-banner")).to_be_visible()
        for _ in range(100):  # the console's first attempt to reconnect is refused
            if network["refused"]:
                break
            await asyncio.sleep(0.1)
        assert network["refused"] >= 1
        meanwhile = ["断线时我发的第一条", "断线时我发的第二条"]
        for text in meanwhile:
            await citizen.say(text)
        await expect(agent.locator("#transcript")).not_to_contain_text(meanwhile[0])

        # the network is back: the console reconnects and shows both, once each, in order
        network["up"] = True
        await expect(agent.locator("#conn-dot")).to_have_attribute("data-state", "online")
        citizen_lines = agent.locator("#transcript .msg[data-sender=citizen] .msg-text")
        await expect(citizen_lines.filter(has_text="断线时")).to_have_text(meanwhile)
        await expect(agent.locator("#conv-state")).to_have_text("服务中")
        await agent.locator("#reply-input").fill("我回来了，刚才的两条都看到了")
        await agent.locator("#reply-send").click()
        reply = await citizen.reply_from("agent")
        assert reply["text"] == "我回来了，刚才的两条都看到了"
        await agent.locator("#close-conv").click()
        await agent.locator("#close-ok").click()
        await expect(agent.locator("#conv-state")).to_have_text("会话已结束")


async def expect_title_counts(page: Page, unread: int, waiting_at_least: int = 0) -> None:
    """The title bar counts the citizens waiting in the queue list plus unread messages.

    Other tests of the session may leave conversations that are requeued later (their agent's
    browser closed), so the waiting part is read off the page's own queue list."""
    deadline = time.monotonic() + 20
    while True:
        title, waiting = await page.evaluate(
            "() => [document.title, document.querySelectorAll('#queue-list .queue-item').length]"
        )
        count = waiting + unread
        expected = f"({count}) {BASE_TITLE}" if count else BASE_TITLE
        if title == expected and waiting >= waiting_at_least:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"title {title!r}, expected {expected!r} ({waiting} waiting, {unread} unread)")
        await asyncio.sleep(0.1)

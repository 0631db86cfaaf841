"""The agent console through a real shift (issue 13), in a real browser against the whole system:

- the queue says who waits, on which channel, in which 技能组 and why they were handed to a person;
  a name saved in the 客户信息 panel shows on the tab and the header at once;
- 内部备注 mode belongs to the conversation it was chosen in; each conversation keeps its unsent
  draft across switches and a reload, and the reload reopens the tab being worked on;
- a picture that loads after it arrived does not hide the newest line of the transcript;
- 转回机器人 asks how the human part ended and for a summary, as 结束会话 does, and records them.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from core.db import make_engine
from core.models import Conversation, ConversationEvent
from tests.conftest import RunningSystem
from tests.e2e.helpers import accept, ask_for_a_person, keep_frames, log_in, shot, wide

pytestmark = pytest.mark.e2e


def png(width: int, height: int) -> bytes:
    """A plain blue picture of the given size (a real PNG, made here)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x30\x60\xc0" * width
    raw = zlib.compress(row * height)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def tab(agent: Page, conversation_id: str):
    return agent.locator(f'#my-convs .conv-tab[data-conversation-id="{conversation_id}"]')


async def test_queue_names_the_group_and_reason_and_a_saved_name_shows_at_once(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    citizen = await new_page(system.hub_urls[1])
    frames = keep_frames(citizen)
    agent = await wide(await new_page(system.hub_urls[0]))
    await log_in(agent, "agent1", "agent1pass")

    _status, conv = await ask_for_a_person(citizen, frames)
    item = agent.locator(f'#queue-list .queue-item[data-conversation-id="{conv}"]')
    await expect(item.locator("[data-testid=queue-group]")).to_have_text("综合技能组")
    await expect(item.locator("[data-testid=queue-reason]")).to_have_text("原因：市民点击转人工")
    await expect(item.locator(".qi-channel")).to_have_text("网页")
    await shot(agent, screenshots, "shift-console-queue", full_page=False)

    await accept(agent, conv)
    await expect(agent.locator("#conv-group")).to_have_text("综合技能组")
    # an unknown citizen: the panel opens the profile form; the saved name replaces 访客 everywhere at once
    await expect(tab(agent, conv).locator(".ct-name")).to_have_text("访客")
    await agent.locator("#crm-name").fill("王小明")
    await agent.locator("[data-testid=crm-save]").click()
    await expect(tab(agent, conv).locator(".ct-name")).to_have_text("王小明")
    await expect(agent.locator("#conv-name")).to_have_text("王小明")
    await shot(agent, screenshots, "shift-console-named", full_page=False)


async def test_note_mode_and_drafts_belong_to_their_conversation_and_survive_a_reload(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    first = await new_page(system.hub_urls[1])
    first_frames = keep_frames(first)
    second = await new_page(system.hub_urls[0])
    second_frames = keep_frames(second)
    agent = await wide(await new_page(system.hub_urls[0]))
    await log_in(agent, "agent2", "agent2pass")

    _s1, conv1 = await ask_for_a_person(first, first_frames)
    await accept(agent, conv1)
    _s2, conv2 = await ask_for_a_person(second, second_frames)
    await accept(agent, conv2)

    reply = agent.locator("#reply-input")
    send = agent.locator("#reply-send")
    # in the first conversation: an internal note half written
    await tab(agent, conv1).click()
    await agent.locator("#mode-note").click()
    await expect(send).to_have_text("添加备注")
    await reply.fill("已核实身份，待回电")
    # the second conversation opens in reply mode: what is typed there goes to the citizen
    await tab(agent, conv2).click()
    await expect(send).to_have_text("发送")
    await expect(agent.locator("#mode-reply")).to_have_attribute("aria-pressed", "true")
    await expect(reply).to_have_value("")
    await reply.fill("您好，请稍等，我查一下")
    # back: the note and its mode are as they were left
    await tab(agent, conv1).click()
    await expect(reply).to_have_value("已核实身份，待回电")
    await expect(send).to_have_text("添加备注")

    # a reload reopens the conversation being worked on, with its draft and its mode
    await agent.reload()
    await expect(agent.locator("#conn-dot")).to_have_attribute("data-state", "online")
    await expect(tab(agent, conv1)).to_have_attribute("aria-selected", "true")
    await expect(reply).to_have_value("已核实身份，待回电")
    await expect(send).to_have_text("添加备注")
    await shot(agent, screenshots, "shift-console-draft-after-reload", full_page=False)
    await tab(agent, conv2).click()
    await expect(reply).to_have_value("您好，请稍等，我查一下")
    await expect(send).to_have_text("发送")

    # sent: the draft is gone, after a reload too
    await send.click()
    await expect(agent.locator("#transcript .msg[data-sender=agent]").filter(has_text="我查一下")).to_have_count(1)
    await agent.reload()
    await expect(agent.locator("#conn-dot")).to_have_attribute("data-state", "online")
    await expect(tab(agent, conv2)).to_have_attribute("aria-selected", "true")
    await expect(reply).to_have_value("")


async def test_the_newest_line_stays_in_view_after_a_picture_loads(system: RunningSystem, new_page) -> None:
    citizen = await new_page(system.hub_urls[1])
    frames = keep_frames(citizen)
    agent = await wide(await new_page(system.hub_urls[0]))
    await log_in(agent, "agent1", "agent1pass")
    _status, conv = await ask_for_a_person(citizen, frames)
    await accept(agent, conv)

    transcript = agent.locator("#transcript")
    for n in range(1, 13):  # enough lines that the transcript scrolls
        await citizen.locator("#chat-input").fill(f"第{n}个问题：材料怎么准备")
        await citizen.locator("#chat-send").click()
        await expect(transcript.locator(".msg[data-sender=citizen]").filter(has_text=f"第{n}个问题")).to_have_count(1)
    await citizen.locator("#chat-file").set_input_files(
        files=[{"name": "材料照片.png", "mimeType": "image/png", "buffer": png(400, 300)}]
    )
    await agent.wait_for_function(
        "() => { const i = document.querySelector('#transcript a.msg-image img');"
        " return !!i && i.complete && i.naturalWidth === 400; }"
    )
    await agent.wait_for_timeout(300)  # the load handlers have run
    gap = await transcript.evaluate("t => t.scrollHeight - t.scrollTop - t.clientHeight")
    assert gap < 4, f"the newest line is {gap}px below the visible part of the transcript"
    await expect(transcript.locator("a.msg-image img")).to_be_in_viewport()


async def test_returning_to_the_bot_asks_for_a_disposition_and_summary(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    citizen = await new_page(system.hub_urls[1])
    frames = keep_frames(citizen)
    agent = await wide(await new_page(system.hub_urls[0]))
    await log_in(agent, "agent2", "agent2pass")
    status, conv = await ask_for_a_person(citizen, frames)
    await accept(agent, conv)

    await agent.locator("#return-bot").click()
    dialog = agent.locator("#close-dialog")
    await expect(dialog).to_be_visible()
    await expect(agent.locator("#close-title")).to_contain_text("转回机器人")
    await expect(agent.locator("#close-hint")).to_contain_text("市民将回到智能客服")
    await expect(agent.locator("#close-ok")).to_have_text("转回机器人")
    # changing one's mind: nothing happened
    await agent.locator("#close-cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(agent.locator("#conv-state")).to_have_text("服务中")

    await agent.locator("#return-bot").click()
    await agent.locator("#close-disposition").select_option("unresolved")
    await agent.locator("#close-summary").fill("市民想自己在网上查办理进度")
    await shot(agent, screenshots, "shift-console-return-to-bot", full_page=False)
    await agent.locator("#close-ok").click()
    await expect(dialog).to_be_hidden()
    await expect(agent.locator("#conv-state")).to_have_text("已转回机器人")
    await expect(status).to_have_attribute("data-owner", "bot")

    engine = make_engine(system.database_url)
    try:
        async with engine.connect() as db:
            for _ in range(50):  # the transition's record is group-committed
                row = (await db.execute(
                    select(Conversation.disposition, Conversation.summary).where(Conversation.id == conv)
                )).one()
                if row.disposition:
                    break
                await agent.wait_for_timeout(100)
            event = (await db.execute(
                select(ConversationEvent.data).where(
                    ConversationEvent.conversation_id == conv, ConversationEvent.kind == "return_to_bot"
                )
            )).scalar_one()
    finally:
        await engine.dispose()
    assert (row.disposition, row.summary) == ("unresolved", "市民想自己在网上查办理进度")
    assert event["disposition"] == "unresolved" and event["summary"] == "市民想自己在网上查办理进度"


async def test_assist_reads_the_conversation_and_the_kb_can_be_searched(system: RunningSystem, new_page) -> None:
    citizen = await new_page(system.hub_urls[1])
    frames = keep_frames(citizen)
    agent = await wide(await new_page(system.hub_urls[0]))
    await log_in(agent, "agent1", "agent1pass")
    _status, conv = await ask_for_a_person(citizen, frames)
    await accept(agent, conv)

    transcript = agent.locator("#transcript")
    for line in ("我在弥勒上班，想办居住证", "需要带什么"):
        await citizen.locator("#chat-input").fill(line)
        await citizen.locator("#chat-send").click()
        await expect(transcript.locator(".msg[data-sender=citizen]").filter(has_text=line)).to_have_count(1)
    # the last line alone says nothing about 居住证: the recommendation reads the lines before it too
    await expect(agent.locator("#assist-for")).to_contain_text("需要带什么")
    first = agent.locator("#assist-list .assist-item").first
    await expect(first.locator(".ai-q")).to_contain_text("居住证")

    # the agent's own search over the KB, and back to the recommendations when it is cleared
    search = agent.locator("#assist-search")
    await search.fill("营业执照 注销")
    found = agent.locator("#assist-list .assist-item").filter(has_text="营业执照怎么注销")
    await expect(found).to_have_count(1)
    await found.locator("[data-testid=assist-insert]").click()
    answer = (await found.locator(".ai-a").text_content() or "").strip()
    await expect(agent.locator("#reply-input")).to_have_value(answer)
    await search.fill("")
    await expect(agent.locator("#assist-list .assist-item").first.locator(".ai-q")).to_contain_text("居住证")


async def test_the_agent_sees_when_the_citizen_has_left_and_when_they_are_back(system: RunningSystem, new_page) -> None:
    citizen = await new_page(system.hub_urls[1])
    frames = keep_frames(citizen)
    agent = await wide(await new_page(system.hub_urls[0]))
    await log_in(agent, "agent2", "agent2pass")
    _status, conv = await ask_for_a_person(citizen, frames)
    await accept(agent, conv)
    state = agent.locator("#conv-state")

    # a reload is not leaving
    await citizen.reload()
    await expect(citizen.locator("#chat-status")).to_have_attribute("data-owner", "agent")
    await agent.wait_for_timeout(6000)
    await expect(state).to_have_text("服务中")

    # the citizen closes the chat: the agent sees it in the header and on the tab
    context = citizen.context
    await citizen.close()
    await expect(state).to_have_text("市民已离开", timeout=15_000)
    await expect(tab(agent, conv).locator(".ct-last")).to_have_text("市民已离开")
    # and back: 服务中 again
    again = await context.new_page()
    await again.goto("/chat")
    await expect(again.locator("#chat-status")).to_have_attribute("data-owner", "agent")
    await expect(state).to_have_text("服务中")

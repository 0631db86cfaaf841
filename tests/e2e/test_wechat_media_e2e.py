"""A WeChat citizen's picture, voice message, link and location in the agent console, in a real browser:
one hub worker with the WeChat channel on (plaintext mode) against the fake WeChat API server
(`tests/channels/test_wechat_media.py`'s system: a fake Rasa, real Redis, a real database).

The citizen asks for a person (the fake Rasa fails on 人工, so the hub queues them); 张敏 accepts; then
the citizen sends a picture (a thumbnail that loads), a voice message (its words and a download
link to the .amr), a picture WeChat no longer has (shown as [图片] with why the file is missing),
a link (clickable) and a location (a map link). A supervisor watching the conversation on the
班长看板 sees the same picture and voice file.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from core.db import make_engine
from core.models import Conversation
from tests.channels.test_wechat_media import AMR, MediaSystem, push, wx  # noqa: F401 (wx: the fixture)
from tests.channels.wechat_fake import openid
from tests.e2e.helpers import accept, log_in, shot

pytestmark = pytest.mark.e2e

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201"
    "e2d4c83a0000000049454e44ae426082"
)


async def conversation_of(wx: MediaSystem, user: str) -> str:  # noqa: F811
    engine = make_engine(wx.hubs.database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                select(Conversation.id).where(Conversation.channel == "wechat", Conversation.channel_user_id == user)
            )
            return str(found.scalar_one())
    finally:
        await engine.dispose()


async def test_the_console_shows_a_wechat_citizens_picture_voice_link_and_location(
    wx: MediaSystem, new_page, screenshots: Path  # noqa: F811
) -> None:
    agent = await new_page(wx.url)
    await log_in(agent, "agent1", "agent1pass")
    user = openid()
    assert (await push(wx, "text", user, Content="转人工")).status_code == 200
    await accept(agent, await conversation_of(wx, user))
    transcript = agent.locator("#transcript")
    citizen = transcript.locator(".msg[data-sender=citizen]")

    picture, voice = "img_" + uuid.uuid4().hex, "voice_" + uuid.uuid4().hex
    wx.wechat.add_media(picture, PNG_1PX, "image/png")
    wx.wechat.add_media(voice, AMR, "audio/amr")
    assert (await push(wx, "image", user, PicUrl="http://mmbiz.qpic.cn/a.png", MediaId=picture)).status_code == 200
    thumb = citizen.locator("a.msg-image")
    await expect(thumb).to_have_count(1)
    href = await thumb.get_attribute("href")
    assert href and href.startswith("/api/web/uploads/")
    await agent.wait_for_function(
        "() => { const i = document.querySelector('#transcript a.msg-image img');"
        " return !!i && i.complete && i.naturalWidth > 0; }"
    )

    voice_push = await push(wx, "voice", user, MediaId=voice, Format="amr", Recognition="公积金怎么提取")
    assert voice_push.status_code == 200
    spoken = citizen.filter(has_text="公积金怎么提取")
    await expect(spoken.locator("a.msg-file")).to_have_count(1)
    await expect(spoken.locator("a.msg-file")).to_contain_text("语音")
    download = await agent.request.get(await spoken.locator("a.msg-file").get_attribute("href") or "")
    assert download.ok and await download.body() == AMR

    gone = await push(wx, "image", user, PicUrl="http://mmbiz.qpic.cn/b.png", MediaId="gone_" + uuid.uuid4().hex)
    assert gone.status_code == 200
    await expect(citizen.locator("[data-testid=msg-media-error]")).to_contain_text("media_id 无效")

    url = "https://example.org/guide?id=7"
    assert (await push(wx, "link", user, Title="办事指南", Url=url)).status_code == 200
    await expect(citizen.locator(f'a[href="{url}"]')).to_have_count(1)

    # 班长看板 监听: the same files in the watched transcript (history and live)
    boss = await new_page(wx.url)
    await log_in(boss, "super1", "super1pass", landing="/supervisor")
    conv = await conversation_of(wx, user)
    await boss.locator(f'li.a-conv[data-conversation-id="{conv}"] .watch-btn').click()
    watched = boss.locator("#watch-transcript .msg[data-sender=citizen]")
    await expect(watched.locator("a.msg-image")).to_have_count(1)
    await boss.wait_for_function(
        "() => { const i = document.querySelector('#watch-transcript a.msg-image img');"
        " return !!i && i.complete && i.naturalWidth > 0; }"
    )
    await expect(watched.filter(has_text="公积金怎么提取").locator("a.msg-file")).to_contain_text("语音")
    await expect(watched.locator("[data-testid=msg-media-error]")).to_contain_text("media_id 无效")
    live = "img_" + uuid.uuid4().hex
    wx.wechat.add_media(live, PNG_1PX, "image/png")
    assert (await push(wx, "image", user, PicUrl="http://mmbiz.qpic.cn/c.png", MediaId=live)).status_code == 200
    await expect(watched.locator("a.msg-image")).to_have_count(2)
    await expect(citizen.locator("a.msg-image")).to_have_count(2)
    await shot(boss, screenshots, "supervisor-watch-wechat-media")

    place = {"Location_X": "24.39", "Location_Y": "103.41", "Scale": "15", "Label": "弥勒市政务服务中心"}
    assert (await push(wx, "location", user, **place)).status_code == 200
    await expect(citizen.locator('a[href="https://uri.amap.com/marker?position=103.41,24.39"]')).to_have_count(1)
    await shot(agent, screenshots, "console-wechat-media")

"""The embeddable widget in a real browser: a bureau's page on ANOTHER origin embeds the chat
with one script tag; the citizen opens it, asks, gets the bot's answer (the real Rasa and KB
of the `system` fixture), sees the typing indicator, votes 👍, sends a picture; at phone width
the panel fills the screen; a site that is not on the allow-list cannot frame the chat.

The widget's hub is one extra worker of the running system (same database, Redis and Rasa)
started with `channels.web.allowed_origins` set to the test site's origin.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import FrameLocator, Page, expect
from sqlalchemy import select

from core.db import make_engine
from core.models import KbFeedback
from tests.channels.telegram_fake import FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.conftest import RunningSystem
from tests.e2e.helpers import open_chat, shot
from tests.support import ROOT, free_port, start_hub, stop_process

pytestmark = pytest.mark.e2e

KB = {
    entry["id"]: entry
    for entry in map(json.loads, (ROOT / "kb_sync" / "demo" / "kb.jsonl").read_text(encoding="utf-8").splitlines())
}
EXPECTED_ENTRY = "D002"
# the entry's own standard question: this test is about the widget, not retrieval quality (the spine test
# asks paraphrases)
QUESTION = KB[EXPECTED_ENTRY]["question"]
BOT_ANSWER_TIMEOUT_MS = 45_000
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 10; V1990A Build/QP1A.190711.020; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/89.0.4389.72 MQQBrowser/6.2 TBS/046011 Mobile Safari/537.36 "
    "MicroMessenger/8.0.30.2260(0x28001E3B) WeChat/arm64 NetType/WIFI Language/zh_CN"
)

SITE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>弥勒市政务服务管理局</title></head>
<body style="font-family: sans-serif; margin: 0; padding: 24px;">
<h1>弥勒市政务服务管理局</h1><p>欢迎访问本局网站。办事指南、政策文件……</p>
<script src="{hub}/static/widget.js" data-hub="{hub}"></script>
</body></html>
"""


@dataclass
class WidgetSite:
    hub_url: str
    site_url: str  # allowed: http://localhost:<port>
    foreign_url: str  # not allowed: http://127.0.0.2:<port> (same page)
    database_url: str


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture(scope="module")
def widget_site(system: RunningSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WidgetSite]:
    site_port, hub_port = free_port(), free_port()
    site_origin = f"http://localhost:{site_port}"
    hub_url = f"http://127.0.0.1:{hub_port}"
    root = tmp_path_factory.mktemp("bureau-site")
    (root / "index.html").write_text(SITE.format(hub=hub_url), encoding="utf-8")
    server = ThreadingHTTPServer(("0.0.0.0", site_port), partial(_Quiet, directory=str(root)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "DATABASE_URL": system.database_url,
        "REDIS_URL": system.redis_url,
        "RASA_URL": system.rasa_url,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": system.prefix,
        "ZWKF_CHANNELS__WEB__ALLOWED_ORIGINS": site_origin,
        "ZWKF_CHANNELS__WEB__UPLOAD_DIR": str(tmp_path_factory.mktemp("widget-uploads")),
    }
    hub = start_hub(env, hub_port, ROOT / "var" / "test-logs" / "widget-hub.log")
    try:
        yield WidgetSite(hub_url, site_origin, f"http://127.0.0.2:{site_port}", system.database_url)
    finally:
        stop_process(hub)
        server.shutdown()
        server.server_close()


async def open_widget(page: Page) -> FrameLocator:
    await page.goto("/")
    button = page.locator("#zwkf-widget-button")
    await expect(button).to_be_visible()
    await expect(button).to_contain_text("在线咨询")
    await button.click()
    await expect(page.locator("#zwkf-widget-panel")).to_be_visible()
    chat = page.frame_locator("#zwkf-widget-frame")
    await expect(chat.locator("#chat-status")).to_have_attribute("data-owner", "bot")  # welcome received
    return chat


async def votes_for(database_url: str, message_id: int) -> list[str]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(KbFeedback.vote).where(KbFeedback.message_id == message_id))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def test_citizen_asks_through_the_embedded_widget_and_votes(
    widget_site: WidgetSite, new_page, screenshots: Path
) -> None:
    page = await new_page(widget_site.site_url)
    chat = await open_widget(page)
    assert await chat.locator("body.embed").count() == 1
    await expect(chat.locator("#chat-close")).to_be_visible()

    frame = next(f for f in page.frames if "/chat?embed=1" in f.url)
    # watch the typing indicator: it shows between the ack and the answer
    await frame.evaluate(
        """() => {
            window.__typingSeen = false;
            const node = document.getElementById('chat-typing');
            new MutationObserver(() => {
                if (!node.classList.contains('hidden')) window.__typingSeen = true;
            }).observe(node, { attributes: true });
        }"""
    )
    bot = chat.locator("#chat-messages .msg[data-sender=bot]")
    before = await bot.count()
    await chat.locator("#chat-input").fill(QUESTION)
    await chat.locator("#chat-send").click()
    mine = chat.locator("#chat-messages .msg[data-sender=citizen]").filter(has_text=QUESTION).last
    await expect(mine).to_have_attribute("data-state", "sent")
    await expect(bot).to_have_count(before + 1, timeout=BOT_ANSWER_TIMEOUT_MS)
    answer = bot.last
    expected = KB[EXPECTED_ENTRY]["answer"]
    await expect(answer.locator(".msg-text")).to_contain_text(expected[:12])
    assert await frame.evaluate("() => window.__typingSeen") is True
    await expect(chat.locator("#chat-typing")).to_be_hidden()

    # 👍 under the KB answer: thanks, and the buttons are gone
    feedback = answer.locator("[data-testid=chat-feedback]")
    await expect(feedback).to_be_visible()
    await shot(page, screenshots, "widget-answer", full_page=False)
    await feedback.locator("[data-testid=chat-vote-up]").click()
    thanks = feedback.locator("[data-testid=chat-feedback-thanks]")
    await expect(thanks).to_have_text("感谢您的评价！")
    await expect(feedback.locator("[data-testid=chat-vote-up]")).to_have_count(0)
    message_id = int(await answer.get_attribute("data-id"))
    assert await votes_for(widget_site.database_url, message_id) == ["up"]

    # a picture: sent through the upload API, shown in the transcript, loadable by this visitor
    await chat.locator("#chat-file").set_input_files(
        files=[{"name": "材料.png", "mimeType": "image/png", "buffer": PNG_1PX}]
    )
    image = chat.locator("#chat-messages .msg[data-sender=citizen] img.msg-image").last
    await expect(image).to_be_visible()
    loaded = await image.evaluate("img => img.complete && img.naturalWidth")
    for _ in range(50):
        if loaded:
            break
        await asyncio.sleep(0.1)
        loaded = await image.evaluate("img => img.complete && img.naturalWidth")
    assert loaded == 1

    # the panel's × closes it; the button opens it again
    await chat.locator("#chat-close").click()
    await expect(page.locator("#zwkf-widget-panel")).to_be_hidden()
    await page.locator("#zwkf-widget-button").click()
    await expect(page.locator("#zwkf-widget-panel")).to_be_visible()
    await shot(page, screenshots, "widget-open", full_page=False)


async def test_phone_width_in_wechat(widget_site: WidgetSite, new_page, screenshots: Path) -> None:
    # the shared fixture fixes a desktop viewport: narrow this page to a phone's
    page = await new_page(widget_site.site_url, user_agent=WECHAT_UA, has_touch=True)
    await page.set_viewport_size({"width": 375, "height": 667})
    chat = await open_widget(page)
    box = await page.locator("#zwkf-widget-panel").bounding_box()
    assert box is not None and box["width"] == 375 and box["height"] == 667
    await expect(page.locator("#zwkf-widget-button")).to_be_hidden()
    await expect(chat.locator("#chat-input")).to_be_visible()
    await expect(chat.locator("#chat-send")).to_be_in_viewport()
    await shot(page, screenshots, "widget-phone", full_page=False)
    await chat.locator("#chat-close").click()
    await expect(page.locator("#zwkf-widget-button")).to_be_visible()


async def test_a_site_not_on_the_allow_list_cannot_frame_the_chat(widget_site: WidgetSite, new_page) -> None:
    """The page's owner is told in the console, the citizen on the button, and the chat opens in a
    new tab instead of a grey, refused panel (issue 13.29)."""
    page = await new_page(widget_site.foreign_url)
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
    await page.goto("/")
    button = page.locator("#zwkf-widget-button")
    await expect(button).to_contain_text("在线咨询（新窗口）")
    await expect(page.locator("#zwkf-widget")).to_have_attribute("data-blocked", "true")
    assert any("allowed_origins" in w and "127.0.0.2" in w for w in warnings), warnings
    async with page.context.expect_page() as opened:
        await button.click()
    chat = await opened.value
    await chat.wait_for_load_state()
    assert chat.url == f"{widget_site.hub_url}/chat"
    await expect(chat.locator("#chat-status")).to_have_attribute("data-owner", "bot")  # a working chat
    # no refused frame on the bureau's page
    await expect(page.locator("#zwkf-widget-frame")).to_have_count(0)
    await expect(page.locator("#zwkf-widget-panel")).to_be_hidden()


async def test_an_allowed_site_is_not_warned(widget_site: WidgetSite, new_page) -> None:
    page = await new_page(widget_site.site_url)
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
    await open_widget(page)
    await expect(page.locator("#zwkf-widget-button")).not_to_contain_text("新窗口")
    assert not [w for w in warnings if "allowed_origins" in w]


# ------------------------------------------------------------------------------ with a scripted bot


RICH_LINK = "https://zwfw.example.gov.cn/jzz"
RICH_HTML = (  # as if the server-side sanitiser had let things through: the page must still refuse them
    f'<p>请登录<a href="{RICH_LINK}">政务服务网</a>在线申请居住证。</p><ul><li>身份证</li></ul>'
    '<p><img src="/static/flow.png" alt="办理流程"></p>'
    '<script>window.__pwned = "script"</script><img src="/x.png" alt="坏图" onerror="window.__pwned = \'img\'">'
    '<a href="javascript:window.__pwned=\'link\'">点我</a>'
)


class RichRasa(FakeRasa):
    """The scripted Rasa, plus a KB answer with rich text on 富文本."""

    def replies(self, text: str, sender: object) -> tuple[int, object]:
        if "富文本" in text:
            meta = {"kb_entry_id": "D900", "kb_score": 0.9, "answer_html": RICH_HTML}
            plain = f"请登录政务服务网（{RICH_LINK}）在线申请居住证。"
            custom = {"recipient_id": sender, "custom": {"zwkf_meta": meta}}
            return 200, [{"recipient_id": sender, "text": plain}, custom]
        return super().replies(text, sender)


@pytest.fixture(scope="module")
def scripted_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeRasa]]:
    """A hub whose Rasa is the fake one: it offers quick replies on 按钮, is slow on 慢, and gives
    a rich KB answer on 富文本."""
    rasa = RichRasa(slow_seconds=2.5).start()
    tmp = tmp_path_factory.mktemp("scripted-hub")
    env = {"RASA_URL": rasa.url, "ZWKF_CHANNELS__WEB__UPLOAD_DIR": str(tmp / "uploads")}
    hubs = start_channel_hubs(tmp, env, log_name="widget-scripted")
    try:
        yield hubs.url, rasa
    finally:
        stop_channel_hubs(hubs)
        rasa.stop()


async def test_typing_quick_replies_and_a_pdf_on_the_chat_page(
    scripted_hub: tuple[str, FakeRasa], new_page, screenshots: Path
) -> None:
    hub_url, rasa = scripted_hub
    page = await new_page(hub_url)
    await open_chat(page)
    assert await page.locator("body.embed").count() == 0
    await expect(page.locator("#chat-close")).to_be_hidden()

    # typing while the (slow) bot thinks, gone with its answer
    await page.locator("#chat-input").fill("慢慢说")
    await page.locator("#chat-send").click()
    typing = page.locator("#chat-typing")
    await expect(typing).to_be_visible()
    await expect(typing).to_contain_text("对方正在输入…")
    await expect(page.locator("#chat-messages .msg[data-sender=bot]").last).to_contain_text("收到：慢慢说")
    await expect(typing).to_be_hidden()

    # quick replies: the payload goes to the bot, the title is what the citizen sees
    await page.locator("#chat-input").fill("有什么按钮")
    await page.locator("#chat-send").click()
    offer = page.locator("#chat-messages .msg[data-sender=bot]").filter(has_text="请选择您要办理的事项").last
    buttons = offer.locator("[data-testid=chat-quick-reply]")
    await expect(buttons).to_have_text(["办理居住证", "转人工"])
    assert await offer.locator("[data-testid=chat-feedback]").count() == 0  # not a KB answer: no 👍/👎
    await buttons.first.click()
    pressed = page.locator("#chat-messages .msg[data-sender=citizen]").last
    await expect(pressed.locator(".msg-text")).to_have_text("办理居住证")
    await expect(pressed).to_have_attribute("data-state", "sent")
    await expect(buttons.first).to_be_disabled()
    await expect(page.locator("#chat-messages .msg[data-sender=bot]").last).to_contain_text("收到：/ask_residence")
    assert "/ask_residence" in rasa.received

    # a PDF becomes a file link; a bad file is refused with the hub's reason
    await page.locator("#chat-file").set_input_files(
        files=[{"name": "申请表.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"}]
    )
    link = page.locator("#chat-messages .msg[data-sender=citizen] .msg-file").last
    await expect(link).to_contain_text("申请表.pdf")
    await page.locator("#chat-file").set_input_files(
        files=[{"name": "假图片.png", "mimeType": "image/png", "buffer": "不是图片".encode() * 20}]
    )
    status = page.locator("#chat-upload-status")
    await expect(status).to_contain_text("只支持上传")
    await shot(page, screenshots, "chat-quick-replies", full_page=False)

    # after a reload the pressed quick reply still shows its title
    await page.reload()
    await expect(page.locator("#chat-status")).to_have_attribute("data-owner", "bot")
    titles = page.locator("#chat-messages .msg[data-sender=citizen] .msg-text")
    await expect(titles.filter(has_text="办理居住证")).to_have_count(1)


async def test_a_link_in_a_kb_answer_renders_as_a_link_and_nothing_else_gets_through(
    scripted_hub: tuple[str, FakeRasa], new_page, screenshots: Path
) -> None:
    hub_url, _rasa = scripted_hub
    page = await new_page(hub_url)
    await open_chat(page)
    await page.locator("#chat-input").fill("富文本的答案")
    await page.locator("#chat-send").click()
    answer = page.locator("#chat-messages .msg[data-sender=bot]").filter(has_text="在线申请居住证").last
    link = answer.get_by_role("link", name="政务服务网")
    await expect(link).to_have_attribute("href", RICH_LINK)
    await expect(link).to_have_attribute("target", "_blank")  # opens in a new tab, the chat stays
    assert "noopener" in (await link.get_attribute("rel") or "")
    await expect(answer.locator("li")).to_have_text(["身份证"])
    await expect(answer.locator("img[alt=办理流程]")).to_have_attribute("src", "/static/flow.png")
    # the page's own check: no script, no event handler, no javascript: link
    assert await answer.locator("script").count() == 0
    assert await answer.locator("img[alt=坏图]").get_attribute("onerror") is None
    await expect(answer.get_by_text("点我")).to_be_visible()
    assert await answer.locator("a[href^=javascript]").count() == 0
    await page.wait_for_timeout(300)  # a broken image's onerror would have fired by now
    assert await page.evaluate("window.__pwned") is None
    assert await answer.locator("[data-testid=chat-feedback]").count() == 1  # still a KB answer: 👍/👎
    await shot(page, screenshots, "chat-rich-answer", full_page=False)

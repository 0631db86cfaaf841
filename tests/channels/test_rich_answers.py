"""A KB answer's three forms on their way to the channels (issue #3 item 2, issue #5).

The answer action (flow/bot_actions.py) turns an entry into: a text that keeps its links'
addresses, the sanitised rich text (`meta.answer_html`) and the editor's short answer
(`meta.short_answer`). Over real HTTP, with a fake Rasa that answers the way that action does:
WeChat and Telegram send the short answer when there is one (else the text with its links),
and the web chat's message frame carries the rich text for the page to render.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from channels import OutboundMessage
from channels.wechat.channel import render_text
from flow.bot_actions import build_action_registry
from flow.dispatch import fold_replies
from hub.services import build_services
from kb_sync.answering import AnswerOutcome, KbAnswer
from tests.channels.telegram_fake import FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.channels.wechat_fake import APP_ID, APP_SECRET, TOKEN, FakeWeChat, Platform, message_xml, next_msg_id, openid
from tests.support import ChatClient

LINK = "https://zwfw.example.gov.cn/jzz"
HTML = (
    f'<p>请登录<a href="{LINK}" target="_blank">政务服务网</a>在线申请居住证。</p>'
    '<p><img src="/static/flow.png" alt="流程"></p>'
)
PLAIN = "请登录政务服务网在线申请居住证。"
SHORT = "居住证可在政务服务网在线申请。"
WITH_LINKS = f"请登录政务服务网（{LINK}）在线申请居住证。\n[图片：流程] /static/flow.png"


def kb_answer(short: str = SHORT) -> KbAnswer:
    return KbAnswer("D900", "户籍", "怎么办居住证", PLAIN, HTML, short, ("居住证",), 0.93)


class RichRasa(FakeRasa):
    """Answers "简答…" with what action_kb_answer produces for an entry with a short answer,
    and "全文…" for one without."""

    def replies(self, text: str, sender: Any) -> tuple[int, Any]:
        if text.startswith(("简答", "全文")):
            meta = {"kb_entry_id": "D900", "kb_score": 0.93, "answer_html": HTML}
            if text.startswith("简答"):
                meta["short_answer"] = SHORT
            custom = {"recipient_id": sender, "custom": {"zwkf_meta": meta}}
            return 200, [{"recipient_id": sender, "text": WITH_LINKS}, custom]
        return super().replies(text, sender)


@dataclass
class RichSystem:
    url: str
    wechat: FakeWeChat


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RichSystem]:
    wechat, rasa = FakeWeChat().start(), RichRasa().start()
    env = {
        "RASA_URL": rasa.url,
        "ZWKF_WECHAT__ENABLED": "true",
        "ZWKF_WECHAT__MODE": "plaintext",
        "ZWKF_WECHAT__APP_ID": APP_ID,
        "ZWKF_WECHAT__APP_SECRET": APP_SECRET,
        "ZWKF_WECHAT__TOKEN": TOKEN,
        "ZWKF_WECHAT__API_BASE_URL": wechat.url,
        "ZWKF_WECHAT__PASSIVE_REPLY_BUDGET_MS": "4000",
        "ZWKF_WECHAT__FETCH_USER_INFO": "false",
    }
    hubs = start_channel_hubs(tmp_path_factory.mktemp("rich"), env, workers=1, log_name="rich-answers")
    try:
        yield RichSystem(hubs.url, wechat)
    finally:
        stop_channel_hubs(hubs)
        wechat.stop()
        rasa.stop()


# -- the answer action -------------------------------------------------------------------------


class OneAnswer:
    store = None  # no KB store behind it: the actions use only answer()

    def __init__(self, answer: KbAnswer) -> None:
        self._answer = answer

    async def answer(self, _text: str) -> AnswerOutcome:
        return AnswerOutcome(self._answer, [])


@pytest.mark.parametrize("short", [SHORT, ""])
async def test_the_answer_action_gives_text_with_links_rich_text_and_short_answer(settings: Any, short: str) -> None:
    services = await build_services(settings)
    try:
        registry = build_action_registry(services.dispatcher, OneAnswer(kb_answer(short)))  # type: ignore[arg-type]
        tracker = {"sender_id": "conv-rich", "latest_message": {"text": "居住证"}}
        status, body = await registry.handle_http({"next_action": "action_kb_answer", "tracker": tracker})
    finally:
        await services.close()
    assert status == 200
    texts = [r["text"] for r in body["responses"] if "text" in r]
    assert texts == [WITH_LINKS]  # a WeChat citizen can still open the link
    meta = next(r["custom"]["zwkf_meta"] for r in body["responses"] if "custom" in r)
    assert meta["answer_html"] == HTML
    assert meta.get("short_answer") == (short or None)


def test_channels_choose_the_short_answer_when_there_is_one() -> None:
    from bot.client import BotReply

    replies = [BotReply(text=WITH_LINKS), BotReply(custom={"zwkf_meta": {"answer_html": HTML, "short_answer": SHORT}})]
    [(text, meta)] = fold_replies(replies)
    assert render_text(OutboundMessage("c", 1, "bot", "智能客服", text, meta)) == SHORT
    del meta["short_answer"]
    assert render_text(OutboundMessage("c", 1, "bot", "智能客服", text, meta)) == WITH_LINKS


# -- over HTTP ---------------------------------------------------------------------------------


async def push(rich: RichSystem, user: str, text: str) -> dict[str, str]:
    platform = Platform()
    query, body = platform.push(message_xml("text", user, msg_id=next_msg_id(), Content=text), "plaintext")
    async with httpx.AsyncClient(timeout=30) as client:
        reply = await client.post(rich.url + "/wechat", params=query, content=body)
    assert reply.status_code == 200 and reply.text != "success", reply.text
    return platform.open_reply(reply.text, query)


async def test_wechat_gets_the_short_answer(rich: RichSystem) -> None:
    reply = await push(rich, openid(), "简答：怎么办居住证")
    assert reply["MsgType"] == "text"
    assert reply["Content"] == SHORT


async def test_wechat_gets_the_text_with_its_links_when_there_is_no_short_answer(rich: RichSystem) -> None:
    reply = await push(rich, openid(), "全文：怎么办居住证")
    assert reply["Content"] == WITH_LINKS
    assert "<a" not in reply["Content"]


async def test_the_web_chat_frame_carries_the_rich_answer(rich: RichSystem) -> None:
    async with ChatClient(rich.url) as chat:
        await chat.say("简答：怎么办居住证")
        answer = await chat.reply_from("bot")
    assert answer["text"] == WITH_LINKS
    assert answer["meta"]["answer_html"] == HTML
    assert answer["meta"]["short_answer"] == SHORT

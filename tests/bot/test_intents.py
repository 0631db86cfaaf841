"""The trained model on phrasings that are NOT in bot/data/nlu.yml (held out)."""

from __future__ import annotations

import pytest

from bot.actions import ActionCall, ActionRegistry, ActionResult
from bot.client import RasaClient, RasaUnavailable
from tests.support import free_port

HELD_OUT = [
    ("我想跟人工客服说话", "request_human"),
    ("能帮我转接一下人工吗", "request_human"),
    ("麻烦转下人工", "request_human"),
    ("请让真人来回复我", "request_human"),
    ("早上好呀", "greet"),
    ("您好啊", "greet"),
    ("我要投诉你们窗口的工作人员态度恶劣", "complaint"),
    ("审批拖了两个月，我要投诉", "complaint"),
    ("新生儿落户需要带什么证件", "kb_question"),
    ("提取住房公积金需要什么条件", "kb_question"),
    ("开餐馆要办什么证", "kb_question"),
    ("给我讲个鬼故事", "out_of_scope"),
    ("太谢谢你了", "thanks"),
]


# A citizen rating the service (#13.1): praise is thanks, never a complaint that queues them.
PRAISE_HELD_OUT = ["5分，服务很好", "非常满意，辛苦你们了", "服务特别好，满意", "4"]


def _nlu_examples() -> set[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "bot" / "data" / "nlu.yml").read_text(encoding="utf-8")
    return {line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")}


def test_held_out_phrasings_are_really_held_out() -> None:
    leaked = ({text for text, _ in HELD_OUT} | set(PRAISE_HELD_OUT)) & _nlu_examples()
    assert not leaked, f"test phrasings copied into nlu.yml: {leaked}"


@pytest.mark.parametrize(("text", "intent"), HELD_OUT)
async def test_model_classifies_held_out_phrasing(rasa_server: str, text: str, intent: str) -> None:
    async with RasaClient(rasa_server) as client:
        result = await client.parse(text)
    assert result.intent == intent, f"{text!r}: {result.intent} {result.confidence:.2f} {result.ranking[:3]}"
    assert result.confidence >= 0.5


@pytest.mark.parametrize("text", PRAISE_HELD_OUT)
async def test_praise_is_not_a_complaint(rasa_server: str, text: str) -> None:
    async with RasaClient(rasa_server) as client:
        result = await client.parse(text)
    assert result.intent not in ("complaint", "request_human"), f"{text!r}: {result.intent} {result.ranking[:3]}"
    if not text.isdigit():
        assert result.intent == "thanks", f"{text!r}: {result.intent} {result.ranking[:3]}"


async def test_greeting_over_rest_channel_uses_chinese_response(rasa_server: str) -> None:
    async with RasaClient(rasa_server) as client:
        replies = await client.send("test-greet", "你好")
    assert replies and "智能客服" in (replies[0].text or "")


async def test_custom_actions_round_trip_through_real_rasa(rasa_server: str, action_stub) -> None:
    """Rasa calls our protocol implementation and relays texts, buttons and custom payloads."""
    registry = ActionRegistry()
    seen: list[ActionCall] = []

    @registry.action("action_handoff")
    async def handoff(call: ActionCall) -> ActionResult:
        seen.append(call)
        return ActionResult(
            texts=["正在为您转接人工客服，请稍候。"],
            custom=[{"type": "handoff", "conversation_id": call.metadata.get("conversation_id")}],
        )

    @registry.action("action_kb_answer")
    async def kb_answer(call: ActionCall) -> ActionResult:
        return ActionResult(
            texts=[f"答：{call.latest_text}"], buttons=[{"title": "转人工", "payload": "/request_human"}]
        )

    action_stub.registry = registry
    async with RasaClient(rasa_server) as client:
        replies = await client.send("test-handoff", "我要转人工", metadata={"conversation_id": "conv-1"})
        kb = await client.send("test-kb", "营业执照怎么办理")
    assert [r.text for r in replies if r.text] == ["正在为您转接人工客服，请稍候。"]
    assert {"type": "handoff", "conversation_id": "conv-1"} in [r.custom for r in replies]
    assert seen[0].sender_id == "test-handoff" and seen[0].intent == "request_human"
    assert kb[0].text == "答：营业执照怎么办理"
    assert kb[0].buttons == [{"title": "转人工", "payload": "/request_human"}]


async def test_client_reports_rasa_down_clearly() -> None:
    async with RasaClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(RasaUnavailable):
            await client.parse("你好")

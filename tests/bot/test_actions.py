"""bot.actions against a request Rasa 3.6.21 really sent (tests/bot/fixtures)."""

from __future__ import annotations

from bot.actions import ActionCall, ActionRegistry, ActionRejected, ActionResult


async def test_handle_round_trips_a_real_rasa_payload(action_payload: dict) -> None:
    registry = ActionRegistry()
    calls: list[ActionCall] = []

    @registry.action("action_kb_answer")
    async def kb_answer(call: ActionCall) -> ActionResult:
        calls.append(call)
        return ActionResult(
            texts=["补办社保卡请携带身份证到社保窗口办理。"],
            custom=[{"type": "kb_answer", "entry_id": "D010"}],
            events=[{"event": "slot", "name": "kb_entry", "value": "D010"}],
        )

    status, body = await registry.handle_http(action_payload)

    assert status == 200
    assert body == {
        "events": [{"event": "slot", "name": "kb_entry", "value": "D010"}],
        "responses": [
            {"text": "补办社保卡请携带身份证到社保窗口办理。"},
            {"custom": {"type": "kb_answer", "entry_id": "D010"}},
        ],
    }
    assert await registry.handle(action_payload) == body
    call = calls[0]
    assert call.action_name == "action_kb_answer"
    assert call.sender_id == "u1"
    assert call.latest_text == "社保卡丢了怎么办"
    assert call.intent == "kb_question"
    assert call.confidence is not None and 0.5 < call.confidence <= 1.0
    assert call.metadata == {"conversation_id": "c1"}
    assert call.input_channel == "rest"
    assert isinstance(call.slots, dict) and call.tracker["sender_id"] == "u1"


async def test_unknown_action_is_a_404_with_rasa_sdk_body(action_payload: dict) -> None:
    action_payload["next_action"] = "action_nobody_registered"
    status, body = await ActionRegistry().handle_http(action_payload)
    assert status == 404
    assert body == {
        "error": "No registered action found for name 'action_nobody_registered'.",
        "action_name": "action_nobody_registered",
    }


async def test_rejection_failure_and_bad_body(action_payload: dict) -> None:
    registry = ActionRegistry()

    @registry.action("action_kb_answer")
    async def reject(call: ActionCall) -> ActionResult:
        raise ActionRejected("知识库暂不可用")

    @registry.action("action_handoff")
    async def broken(call: ActionCall) -> ActionResult:
        raise RuntimeError("boom")

    assert await registry.handle_http(action_payload) == (
        400,
        {"error": "知识库暂不可用", "action_name": "action_kb_answer"},
    )
    action_payload["next_action"] = "action_handoff"
    status, body = await registry.handle_http(action_payload)
    assert status == 500 and body["action_name"] == "action_handoff" and "boom" in body["error"]
    assert (await registry.handle_http([]))[0] == 400
    assert (await registry.handle_http({"tracker": {}}))[0] == 400


async def test_buttons_attach_to_last_text_and_bad_events_are_refused(action_payload: dict) -> None:
    result = ActionResult(texts=["a", "b"], buttons=[{"title": "转人工", "payload": "/request_human"}])
    assert result.to_protocol()["responses"] == [
        {"text": "a"},
        {"text": "b", "buttons": [{"title": "转人工", "payload": "/request_human"}]},
    ]
    registry = ActionRegistry()

    @registry.action("action_kb_answer")
    async def bad_event(call: ActionCall) -> ActionResult:
        return ActionResult(events=[{"name": "no event key"}])

    status, _ = await registry.handle_http(action_payload)
    assert status == 500
    assert registry.names() == ["action_kb_answer"]

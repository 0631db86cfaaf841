"""The custom actions Rasa calls back into (the hub is Rasa's action server).

The KB, the fallback count and the handoff all live in the hub, so Rasa only decides the
intent and which action runs.
"""

from __future__ import annotations

from typing import Any

from bot import ActionCall, ActionRegistry, ActionResult
from flow.answer_text import answer_forms, text_with_links
from flow.dispatch import Dispatcher
from kb_sync import AnswerService, KbStore


def build_action_registry(dispatcher: Dispatcher, answers: AnswerService, kb: KbStore | None = None) -> ActionRegistry:
    settings = dispatcher.settings
    ownership = dispatcher.ownership
    handoff = dispatcher.handoff
    kb = kb if kb is not None else getattr(answers, "_store", None)
    marker = handoff.config.kb_marker
    fallbacks_before_handoff = int(settings.get("handoff.fallbacks_before_handoff", 2))
    registry = ActionRegistry()

    async def hand_off(call: ActionCall, reason: str, intent: str | None = None) -> ActionResult:
        conversation = await dispatcher.conversations.get(call.sender_id)
        if conversation is None:
            return ActionResult(texts=[str(settings.get("bot.not_sure_reply"))])
        text = await dispatcher.request_human(conversation, reason=reason, announce=False, intent=intent)
        return ActionResult(texts=[text] if text else [])

    async def always_hands_off(entry_id: str) -> bool:
        """A KB entry whose keywords carry the marker (e.g. "#转人工") is answered and then handed off."""
        if not marker or kb is None:
            return False
        entry = await kb.get(entry_id)
        return entry is not None and marker in (entry.keywords or [])

    async def decline(call: ActionCall, reply: str, reason: str) -> ActionResult:
        if await ownership.count_fallback(call.sender_id) >= fallbacks_before_handoff:
            return await hand_off(call, reason)
        return ActionResult(texts=[reply], custom=[{"zwkf_meta": {"declined": True, "reason": reason}}])

    async def action_kb_answer(call: ActionCall) -> ActionResult:
        outcome = await answers.answer(call.latest_text)
        if outcome.answer is None:
            return await decline(call, str(settings.get("bot.not_sure_reply")), "kb_declined")
        await ownership.reset_fallbacks(call.sender_id)
        found = outcome.answer
        # the last branch answered picks the skill group if the citizen asks for a person
        await handoff.remember_branch(call.sender_id, found.branch)
        meta: dict[str, Any] = {
            "kb_entry_id": found.entry_id, "kb_question": found.question, "kb_score": round(found.score, 4),
        }
        meta.update(answer_forms(found))
        keywords = getattr(found, "keywords", None)
        if (marker in keywords) if keywords is not None else await always_hands_off(found.entry_id):
            meta["handoff_after"] = True  # the dispatcher hands off once the answer is delivered
        # rich answers reach text-only channels with their links' addresses kept (flow.answer_text)
        text = text_with_links(meta.get("answer_html", "")) or found.answer
        return ActionResult(texts=[text], custom=[{"zwkf_meta": meta}])

    async def action_out_of_scope(call: ActionCall) -> ActionResult:
        return await decline(call, str(settings.get("bot.out_of_scope_reply")), "out_of_scope")

    async def action_handoff(call: ActionCall) -> ActionResult:
        return await hand_off(call, call.intent or "request_human", intent=call.intent)

    async def action_lookup_citizen(call: ActionCall) -> ActionResult:
        """Tell Rasa who is writing (the CRM profile's name), so the greeting can use it."""
        conversation = await dispatcher.conversations.get(call.sender_id)
        citizen = await dispatcher.citizens.get(conversation.citizen_id) if conversation else None
        name = citizen.name if citizen and citizen.name else None
        return ActionResult(
            events=[
                {"event": "slot", "name": "citizen_name", "value": name},
                {"event": "slot", "name": "citizen_known", "value": name is not None},
            ]
        )

    registry.register("action_kb_answer", action_kb_answer)
    registry.register("action_lookup_citizen", action_lookup_citizen)
    registry.register("action_out_of_scope", action_out_of_scope)
    registry.register("action_handoff", action_handoff)
    return registry

"""The custom actions Rasa calls back into (the hub is Rasa's action server).

The KB, the fallback count and the handoff all live in the hub, so Rasa only decides the
intent and which action runs.
"""

from __future__ import annotations

import re
from typing import Any

from bot import ActionCall, ActionRegistry, ActionResult
from flow.answer_text import answer_forms, text_with_links
from flow.dispatch import Dispatcher
from handoff import ConversationView
from kb_sync import AnswerService, KbAnswer, KbStore
from kb_sync.clarify import Clarifications, Offer, offer_reply

# A handoff intent below this confidence does not override a confident KB answer (#13.2)
WEAK_HANDOFF_INTENT = 0.9
SURE_KB_ANSWER = 0.7
TEXT_CHANNELS = frozenset({"wechat", "telegram", "voice"})  # options numbered: typed or said (a call reads them out)


def build_action_registry(dispatcher: Dispatcher, answers: AnswerService, kb: KbStore | None = None) -> ActionRegistry:
    settings = dispatcher.settings
    ownership = dispatcher.ownership
    handoff = dispatcher.handoff
    kb = kb if kb is not None else answers.store
    marker = handoff.config.kb_marker
    fallbacks_before_handoff = int(settings.get("handoff.fallbacks_before_handoff", 2))
    explicit = [str(k) for k in (settings.get("handoff.keywords") or [])] + ["转人工", "人工客服", "人工"]
    clarifications = Clarifications(ownership.redis, ownership.keys, getattr(kb, "sessions", None))
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

    async def answered(sender_id: str, found: KbAnswer) -> tuple[str, dict[str, Any]]:
        """The text and meta of a KB answer (the bot's reply, or the entry a citizen picked)."""
        await ownership.reset_fallbacks(sender_id)
        # the last branch answered picks the skill group if the citizen asks for a person
        await handoff.remember_branch(sender_id, found.branch)
        meta: dict[str, Any] = {
            "kb_entry_id": found.entry_id, "kb_question": found.question, "kb_score": round(found.score, 4),
        }
        meta.update(answer_forms(found))
        keywords = getattr(found, "keywords", None)
        if (marker in keywords) if keywords is not None else await always_hands_off(found.entry_id):
            meta["handoff_after"] = True  # the dispatcher hands off once the answer is delivered
        # rich answers reach text-only channels with their links' addresses kept (flow.answer_text)
        return text_with_links(meta.get("answer_html", "")) or found.answer, meta

    async def action_kb_answer(call: ActionCall) -> ActionResult:
        outcome = await answers.answer(call.latest_text)
        if outcome.answer is None and outcome.clarify:
            offer = Offer(call.latest_text, tuple((a.entry_id, a.question) for a in outcome.clarify))
            await clarifications.offer(call.sender_id, offer)
            channel = str(call.metadata.get("channel") or call.input_channel or "")
            text, buttons = offer_reply(offer, numbered=channel in TEXT_CHANNELS)
            meta = {"clarify": [a.entry_id for a in outcome.clarify]}
            return ActionResult(texts=[text], buttons=buttons, custom=[{"zwkf_meta": meta}])
        if outcome.answer is None:
            return await decline(call, str(settings.get("bot.not_sure_reply")), "kb_declined")
        text, meta = await answered(call.sender_id, outcome.answer)
        return ActionResult(texts=[text], custom=[{"zwkf_meta": meta}])

    async def take_pick(conversation: ConversationView, text: str) -> bool:
        """The citizen's answer to "您是想问：" (the dispatcher asks before the bot): True when handled."""
        pick = await clarifications.take(conversation.id, text)
        if pick is None:
            return False
        await clarifications.record(conversation.id, conversation.channel, pick)
        found = await answers.entry(pick.entry_id) if pick.entry_id is not None else None
        if found is None:
            await dispatcher.request_human(conversation, reason="clarify_none", announce=True)
            return True
        reply, meta = await answered(conversation.id, found)
        handoff_after = bool(meta.pop("handoff_after", False))
        await dispatcher.say(conversation, "bot", reply, sender_name="智能客服", meta=meta)
        if handoff_after:
            await dispatcher.request_human(conversation, reason="kb_entry", announce=True)
        return True

    dispatcher.take_pick = take_pick

    async def action_out_of_scope(call: ActionCall) -> ActionResult:
        return await decline(call, str(settings.get("bot.out_of_scope_reply")), "out_of_scope")

    def asks_for_a_person(text: str) -> bool:
        return any(k and k in text for k in explicit)

    async def action_handoff(call: ActionCall) -> ActionResult:
        """Only an explicit ask hands off on its own; a weak handoff guess loses to a sure KB answer."""
        weak = call.confidence is not None and call.confidence < WEAK_HANDOFF_INTENT
        if weak and call.latest_text and not asks_for_a_person(re.sub(r"\s", "", call.latest_text)):
            outcome = await answers.answer(call.latest_text)
            if outcome.answer is not None and outcome.answer.score >= SURE_KB_ANSWER:
                text, meta = await answered(call.sender_id, outcome.answer)
                return ActionResult(texts=[text], custom=[{"zwkf_meta": meta}])
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

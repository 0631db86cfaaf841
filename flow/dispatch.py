"""The flow of one message: persist, acknowledge, then bot or agent, then deliver.

This is the only place that decides where a citizen's message goes; it reads the owner
from the state machine and never changes it except through `Ownership.apply`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot import RasaClient
from channels import InboundMessage, OutboundMessage, OutputChannel
from core.bus import EventBus
from core.config import Settings
from core.events import CitizenPresenceEvent, MessageEvent, TypingEvent
from core.masking import mask_text
from crm import CitizenDirectory, add_message_ticket
from flow.open_conversations import OpenConversations
from flow.rating_reply import RatingReplies
from flow.recovery import AnswerLeases
from handoff import (
    ConversationStore,
    ConversationView,
    Handoff,
    HandoffError,
    MessageView,
    Owner,
    Ownership,
    OwnerState,
)

log = logging.getLogger(__name__)

Ack = Callable[[MessageView], Awaitable[None]]
# the citizen's answer to the bot's "您是想问：" (set by flow.bot_actions): True when it was one
TakePick = Callable[[ConversationView, str], Awaitable[bool]]

__all__ = ["Dispatcher", "HandoffError", "fold_replies"]


async def _no_ack(_message: MessageView) -> None:
    return None


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        conversations: ConversationStore,
        citizens: CitizenDirectory,
        ownership: Ownership,
        bus: EventBus,
        rasa: RasaClient,
    ) -> None:
        self.settings = settings
        # privacy.redact_at_ingest: a citizen's phone and ID numbers are masked before anything keeps them
        self.redact_at_ingest = bool(settings.get("privacy.redact_at_ingest", False))
        self.conversations = conversations
        self.citizens = citizens
        self.ownership = ownership
        self.bus = bus
        self.rasa = rasa
        self.channels: dict[str, OutputChannel] = {}
        self.handoff = Handoff(self, bus, settings, ownership, conversations, citizens, add_message_ticket)
        self.open_conversations = OpenConversations(ownership.redis, ownership.keys)
        self.leases = AnswerLeases(ownership.redis, ownership.keys)
        self.ratings = RatingReplies(ownership.redis, ownership.keys)
        self.take_pick: TakePick | None = None

    def register_channel(self, channel: OutputChannel) -> None:
        self.channels[channel.name] = channel

    async def open_conversation(self, channel: str, channel_user_id: str) -> ConversationView:
        """The citizen's open conversation on a channel (a new one with the bot if none).

        From the Redis cache when it holds it (flow.open_conversations), else from the record,
        resolving the citizen's identity only when a conversation has to be opened."""
        cached = await self.open_conversations.get(channel, channel_user_id)
        if cached is not None:
            return cached
        conversation = await self.conversations.find_open(channel, channel_user_id)
        if conversation is None:
            citizen_id = await self.citizens.resolve(f"{channel}_user", channel_user_id)
            conversation, _created = await self.conversations.open_for(channel, channel_user_id, citizen_id)
        await self.ownership.load(conversation.id, conversation.owner, conversation.agent_id, conversation.group)
        await self.open_conversations.put(conversation)
        return conversation

    async def on_inbound(
        self, inbound: InboundMessage, ack: Ack = _no_ack, conversation: ConversationView | None = None
    ) -> MessageView | None:
        """Handle one citizen message; `ack` runs once the message is committed.

        A channel that has just opened the citizen's conversation passes it in (saves a lookup)."""
        if self.redact_at_ingest:
            inbound = dataclasses.replace(inbound, text=mask_text(inbound.text))
        if conversation is None:
            conversation = await self.open_conversation(inbound.channel, inbound.channel_user_id)
        message, is_new = await self.conversations.record(
            conversation.id,
            inbound.channel,
            "citizen",
            inbound.text,
            channel_message_id=inbound.channel_message_id,
            meta=dict(inbound.meta, kind=inbound.kind),
        )
        self.start_background()
        state: OwnerState | None = None
        if is_new:
            # answered by this worker (flow.recovery); the owner is read in the same round trip
            state = OwnerState.from_hash(
                await self.leases.begin(message.id, read_hash=self.ownership.keys.conversation(conversation.id))
            )
        await ack(message)
        if not is_new:
            # a platform's retry of something already handled, or being handled by a live
            # worker; unless the worker that stored it stopped before answering
            if not await self.leases.take_over(message.id, message.created_at):
                return None
            log.warning("message %s was stored but not answered: answering it now", message.id)
        try:
            await self._answer(conversation, message, inbound, state)
        finally:
            await self._answered(message.id)
        return message

    async def _answer(
        self, conversation: ConversationView, message: MessageView, inbound: InboundMessage,
        state: OwnerState | None = None,
    ) -> None:
        """Everything after the commit: the agent sees it, or a handoff trigger, or the bot answers.

        `state`: the owner as read right after the commit (else read here)."""
        if state is None:
            state = await self.ownership.state(conversation.id)
        await self._publish_message(conversation, message, state.agent_id)
        if state.owner == Owner.AGENT:
            return
        if state.owner == Owner.BOT and self.take_pick is not None and bot_understands(inbound) \
                and await self.take_pick(conversation, inbound.text):
            return
        if state.owner == Owner.BOT:
            # the reply to the 满意度评价 prompt is a rating, not a question (flow.rating_reply)
            score = await self.ratings.take(conversation, inbound.text, self.handoff)
            if score is not None:
                thanks = str(self.handoff.config.texts["csat_thanks"])
                await self.say(conversation, "system", thanks, meta={"csat_done": True, "score": score})
                return
            # keywords, anger words and flagged citizens hand off before the bot is asked
            reason = await self.handoff.trigger(conversation, inbound.text, state)
            if reason is not None:
                await self.request_human(conversation, reason=reason, announce=True)
                return
        if not bot_understands(inbound):
            # images, files, locations, links and voice without WeChat's recognition: the bot
            # cannot read them; say so instead of counting a fallback against the citizen
            await self.say(conversation, "bot", str(self.settings.get("bot.media_reply")), sender_name="智能客服")
            return
        await self.ask_bot(conversation, inbound.text)

    async def _answered(self, message_id: int) -> None:
        try:
            await self.leases.done(message_id)
        except Exception:
            log.warning("could not mark message %s answered", message_id, exc_info=True)

    async def _created_at(self, message_id: int) -> Any:
        message = await self.conversations.message(message_id)
        return None if message is None else message.created_at

    async def _reanswer(self, message_id: int) -> None:
        """The sweeper's take-over of a message a stopped worker stored but did not answer."""
        try:
            message = await self.conversations.message(message_id)
            conversation = await self.conversations.get(message.conversation_id) if message else None
            if message is None or conversation is None or conversation.status != "open":
                return
            meta = {key: value for key, value in message.meta.items() if key != "kind"}
            inbound = InboundMessage(
                conversation.channel, conversation.channel_user_id, message.text,
                kind=str(message.meta.get("kind") or "text"), meta=meta,
            )
            await self._answer(conversation, message, inbound)
        finally:
            await self._answered(message_id)

    def start_background(self) -> None:
        """This worker's heartbeat and the unanswered-message sweeper (idempotent; at server start)."""
        self.leases.start(self._reanswer, self._created_at)

    async def aclose(self) -> None:
        """Stop this worker's heartbeat and sweeper (at shutdown)."""
        await self.leases.stop()

    async def note(
        self,
        conversation: ConversationView,
        text: str,
        meta: dict[str, Any] | None = None,
        channel_message_id: str | None = None,
    ) -> tuple[MessageView, bool]:
        """A system line for the transcript and the agent (a delivery error, an unsubscribe),
        never sent to the citizen. Returns (message, is_new): a repeated channel id is a no-op."""
        message, is_new = await self.conversations.record(
            conversation.id, conversation.channel, "system", text, meta=meta, channel_message_id=channel_message_id
        )
        if is_new:
            state = await self.ownership.state(conversation.id)
            await self._publish_message(conversation, message, state.agent_id)
        return message, is_new

    async def ask_bot(self, conversation: ConversationView, text: str) -> None:
        if getattr(self.channels.get(conversation.channel), "shows_typing", False):
            await self.bus.publish(TypingEvent(conversation.id, "bot"))
        try:
            replies = await self.rasa.send(conversation.id, text, {"channel": conversation.channel})
        except Exception:
            log.exception("Rasa did not answer for %s", conversation.id)
            await self.say(conversation, "system", self.settings.get("bot.unavailable_reply"))
            await self.request_human(conversation, reason="bot_unavailable", announce=True)
            return
        state = await self.ownership.state(conversation.id)
        if state.owner == Owner.AGENT:
            return  # an agent took the conversation meanwhile: the bot stays silent
        handoff_after = False
        for text_reply, meta in fold_replies(replies):
            handoff_after = bool(meta.pop("handoff_after", False)) or handoff_after
            await self.say(conversation, "bot", text_reply, sender_name="智能客服", meta=meta, state=state)
        if handoff_after:  # a KB entry marked always-hand-off (its keywords carry the marker)
            await self.request_human(conversation, reason="kb_entry", announce=True)

    async def request_human(
        self,
        conversation: ConversationView,
        *,
        reason: str,
        announce: bool,
        intent: str | None = None,
        group: str | None = None,
    ) -> str:
        """Put the conversation in its skill group's queue (handoff does it); returns the text that
        tells the citizen, "" when nothing was queued (outside working hours) or an agent has it."""
        return await self.handoff.request_human(
            conversation, reason=reason, announce=announce, intent=intent, group=group
        )

    async def leave_message(self, conversation: ConversationView, text: str) -> dict[str, Any]:
        """The web chat's `leave_message` frame: a 留言 becomes a ticket. Raises HandoffError (code, reason)."""
        return await self.handoff.leave_message(conversation, text)

    async def rate(
        self, conversation_id: str, score: Any, comment: Any = "", *, channel_user_id: str | None = None
    ) -> dict[str, Any]:
        """The web chat's `csat` frame. Raises HandoffError (code, reason)."""
        return await self.handoff.rate(conversation_id, channel_user_id, score, comment)

    async def say(
        self,
        conversation: ConversationView,
        sender: str,
        text: str,
        *,
        sender_name: str = "",
        meta: dict[str, Any] | None = None,
        state: OwnerState | None = None,
    ) -> MessageView:
        """Record a bot, agent or system message and deliver it to the citizen and the agent.

        `state`: the owner the caller has just read (saves reading it again)."""
        message, _ = await self.conversations.record(
            conversation.id, conversation.channel, sender, text, sender_name=sender_name, meta=meta
        )
        if state is None:
            state = await self.ownership.state(conversation.id)
        if meta and meta.get("csat"):
            await self.ratings.prompted(conversation)
        await self._publish_message(conversation, message, state.agent_id)
        channel = self.channels.get(conversation.channel)
        if channel is not None:
            outbound = OutboundMessage(conversation.id, message.id, sender, sender_name, text, message.meta)
            try:
                await channel.send(conversation.channel_user_id, outbound)
            except Exception:
                log.exception("channel %s failed to send to %s", conversation.channel, conversation.id)
        return message

    async def typing(self, conversation_id: str, sender: str, active: bool = True) -> bool:
        """Someone is writing (or stopped): the citizen (shown to the serving agent) or the agent
        (shown on the citizen's chat). Nothing is stored; a citizen typing to the bot is not news.
        Returns whether it was passed on."""
        state = await self.ownership.state(conversation_id)
        if state.owner != Owner.AGENT:
            return False
        await self.bus.publish(TypingEvent(conversation_id, sender, state.agent_id, active))
        return True

    async def citizen_present(self, conversation_id: str, present: bool) -> None:
        """The web chat page of a conversation an agent serves opened (True) or its last one closed
        (False): the agent's console shows whether the citizen is still there."""
        state = await self.ownership.state(conversation_id)
        if state.owner == Owner.AGENT:
            await self.bus.publish(CitizenPresenceEvent(conversation_id, state.agent_id, present))

    async def _publish_message(
        self, conversation: ConversationView, message: MessageView, agent_id: int | None
    ) -> None:
        await self.bus.publish(MessageEvent(conversation.id, conversation.channel, agent_id, message.to_json()))


MEDIA_KINDS = frozenset({"image", "file", "video", "shortvideo", "location", "link", "unsupported"})


def bot_understands(inbound: InboundMessage) -> bool:
    """Everything but media, and voice only when the platform already turned it into text."""
    if inbound.kind == "voice":
        return bool(inbound.meta.get("recognition"))
    return inbound.kind not in MEDIA_KINDS


def fold_replies(replies: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Rasa sends a text and its custom payload as two replies; join them back into one message.

    A custom payload carrying `zwkf_meta` belongs to the text before it (the KB entry that
    answered, its score), and `buttons` become quick replies.
    """
    folded: list[tuple[str, dict[str, Any]]] = []
    for reply in replies:
        custom = reply.custom or {}
        if "zwkf_meta" in custom and folded:
            folded[-1][1].update(custom["zwkf_meta"])
            continue
        if reply.text:
            meta: dict[str, Any] = {}
            if reply.buttons:
                meta["buttons"] = reply.buttons
            folded.append((reply.text, meta))
    return folded

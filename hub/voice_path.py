"""The message path as the call center sees it (voice_bridge.MessagePath): a call is a conversation
on the `voice` channel, its citizen found by the caller's number, its questions answered by the same
dispatcher, bot and KB as a chat, its 转人工 the same queue and routing."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from channels import InboundMessage
from crm import CitizenDirectory
from flow.dispatch import Dispatcher
from handoff import ConversationStore, ConversationView
from voice_bridge import CallRecords, VoiceBridge, VoiceConfig

log = logging.getLogger(__name__)

CHANNEL = "voice"


class VoicePath:
    def __init__(self, dispatcher: Dispatcher, conversations: ConversationStore, citizens: CitizenDirectory) -> None:
        self.dispatcher = dispatcher
        self.conversations = conversations
        self.citizens = citizens

    async def _conversation(self, call_id: str) -> ConversationView:
        return await self.dispatcher.open_conversation(CHANNEL, call_id)

    async def open_call(self, call_id: str, caller: str) -> tuple[str, int]:
        citizen_id = await self.citizens.resolve("phone", caller)
        await self.conversations.open_for(CHANNEL, call_id, citizen_id)
        conversation = await self._conversation(call_id)
        return conversation.id, citizen_id

    async def ask(self, call_id: str, text: str, meta: dict[str, Any]) -> None:
        await self.dispatcher.on_inbound(InboundMessage(CHANNEL, call_id, text, meta=meta))

    async def note(self, call_id: str, text: str) -> None:
        await self.dispatcher.note(await self._conversation(call_id), text)

    async def hand_off(self, call_id: str, group: str | None, reason: str) -> None:
        conversation = await self._conversation(call_id)
        await self.dispatcher.request_human(conversation, reason=reason, announce=False, group=group)

    async def queue_position(self, call_id: str) -> int | None:
        conversation = await self._conversation(call_id)
        state = await self.dispatcher.ownership.state(conversation.id)
        if state.group is None:
            return None
        return await self.dispatcher.ownership.queue_position(conversation.id, state.group)

    async def abandon(self, call_id: str) -> None:
        conversation = await self._conversation(call_id)
        await self.dispatcher.note(conversation, "市民在排队中挂机（放弃）")
        await self.dispatcher.ownership.apply(
            conversation.id, "close", actor="citizen", data={"disposition": "abandoned", "reason": "abandoned"}
        )
        await self.dispatcher.open_conversations.forget(conversation.id)

    async def finish(self, call_id: str) -> None:
        await self.note(call_id, "通话结束")


LOCK_SECONDS = 30
PURGE_EVERY_SECONDS = 6 * 3600


def build_voice(services: Any) -> VoiceBridge | None:
    """The call center for this worker when `voice.enabled`: its channel registered with the dispatcher
    and its event handler on the bus; the SIP stack starts in one worker only (`run_voice`)."""
    config = VoiceConfig.from_settings(services.settings)
    if not config.enabled:
        return None
    path = VoicePath(services.dispatcher, services.conversations, services.citizens)
    bridge = VoiceBridge(config, path, CallRecords(services.sessions, config.recordings_dir))
    services.dispatcher.register_channel(bridge.channel)
    services.bus.subscribe(bridge.on_event)
    return bridge


async def run_voice(bridge: VoiceBridge, redis: Any, lock_key: str) -> None:
    """Start the SIP user agent in the worker holding the Redis lock (baresip allows one stack per
    process, and one hotline binds one port); another worker takes over within LOCK_SECONDS of this
    one stopping."""
    token = uuid.uuid4().hex
    while True:
        if await redis.set(lock_key, token, nx=True, ex=LOCK_SECONDS):
            break
        await asyncio.sleep(LOCK_SECONDS / 3)
    try:
        await bridge.start()
    except Exception:
        log.exception("the SIP user agent could not start")
        await redis.delete(lock_key)
        return
    try:
        await _keep(bridge, redis, lock_key, token)
    finally:  # stopped or cancelled: let the next worker start the user agent now, not after the lock expires
        await redis.eval(_RELEASE_LUA, 1, lock_key, token)


# delete the lock only while it is still ours (another worker may hold it after an expiry)
_RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


async def _keep(bridge: VoiceBridge, redis: Any, lock_key: str, token: str) -> None:
    """Renew the lock while the user agent runs, and purge old recordings now and then."""
    purged_at = 0.0
    while bridge.running:
        await redis.set(lock_key, token, ex=LOCK_SECONDS)
        if time.monotonic() - purged_at > PURGE_EVERY_SECONDS:  # recordings past voice.recording_retention_days
            purged_at = time.monotonic()
            try:
                removed = await bridge.records.purge_recordings(bridge.config.recording_retention_days)
                if removed:
                    log.info("deleted %d recordings past their retention", removed)
            except Exception:
                log.exception("could not purge old recordings")
        await asyncio.sleep(LOCK_SECONDS / 3)

"""Everything one hub worker holds, built once at start-up (the composition root)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import ActionRegistry, RasaClient
from channels.web import WebChannel
from crm import CitizenDirectory, build_screen_pop
from handoff import ConversationStore, Ownership
from handoff.console import AgentConsole
from hub.auth import Accounts
from hub.bot_actions import build_action_registry
from hub.bus import EventBus
from hub.config import Settings
from hub.db import make_engine, make_sessionmaker
from hub.dispatch import Dispatcher
from hub.redis_client import Keys, make_redis
from kb_sync import AnswerService, KbStore


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    keys: Keys
    bus: EventBus
    accounts: Accounts
    conversations: ConversationStore
    citizens: CitizenDirectory
    ownership: Ownership
    kb: KbStore
    answers: AnswerService
    rasa: RasaClient
    dispatcher: Dispatcher
    actions: ActionRegistry
    web: WebChannel
    console: AgentConsole

    async def close(self) -> None:
        await self.bus.stop()
        await self.rasa.aclose()
        await self.redis.aclose()
        await self.engine.dispose()


async def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    redis = make_redis(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    bus = EventBus(redis, keys.events_channel())
    conversations = ConversationStore(sessions)
    citizens = CitizenDirectory(sessions)
    ownership = Ownership(redis, keys, sessions, bus)
    kb = KbStore(sessions)
    answers = AnswerService(kb, redis, keys, settings.get("bot.kb_answer_threshold"))
    rasa = RasaClient(settings.rasa_url, timeout=float(settings.get("bot.rasa_timeout_seconds", 10)))
    dispatcher = Dispatcher(settings, conversations, citizens, ownership, bus, rasa)
    actions = build_action_registry(dispatcher, answers, kb)

    async def state_frame(conversation_id: str) -> dict[str, Any]:
        # owner, queue_position, eta_seconds, group, agent_name (handoff.service.Handoff.state_frame)
        return await dispatcher.handoff.state_frame(conversation_id)

    async def history(conversation_id: str) -> list[dict[str, Any]]:
        # a supervisor's whisper to the agent is never shown to the citizen
        return [m.to_json() for m in await conversations.transcript(conversation_id) if not m.meta.get("whisper")]

    async def screen_pop(conversation_id: str, user: Any) -> dict[str, Any]:
        return await build_screen_pop(
            citizens, conversations, conversation_id, viewer_id=user.id, viewer_role=user.role
        )

    async def queue_items() -> list[dict[str, Any]]:
        items = []
        now = time.time()
        for conversation_id, group, since in await ownership.waiting():
            conversation = await conversations.get(conversation_id)
            if conversation is None:
                continue
            citizen = await citizens.get(conversation.citizen_id)
            transcript = await conversations.transcript(conversation_id)
            last = next((m.text for m in reversed(transcript) if m.sender == "citizen"), "")
            items.append(
                {
                    "conversation_id": conversation_id,
                    "channel": conversation.channel,
                    "group": group,
                    "citizen_name": (citizen.name if citizen else None) or "访客",
                    "waiting_since": since,
                    "waiting_seconds": max(0, round(now - since)),
                    "last_text": last,
                }
            )
        return items

    web = WebChannel(
        dispatcher,
        state_frame,
        history,
        max_frame_chars=int(settings.get("channels.web.max_frame_chars", 4000)),
        max_text_chars=int(settings.get("channels.web.max_text_chars", 1000)),
    )
    dispatcher.register_channel(web)
    console = AgentConsole(
        dispatcher, ownership, conversations, screen_pop, queue_items, int(settings.get("handoff.agent_capacity", 5))
    )
    bus.subscribe(web.on_event)
    bus.subscribe(console.on_event)
    accounts = Accounts(sessions, redis, keys, int(settings.get("hub.session_hours", 12)))
    return Services(
        settings, engine, sessions, redis, keys, bus, accounts, conversations, citizens, ownership, kb, answers, rasa,
        dispatcher, actions, web, console,
    )

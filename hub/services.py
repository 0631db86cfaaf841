"""Everything one hub worker holds, built once at start-up (the composition root)."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import ActionRegistry, RasaClient
from channels.web import WebChannel
from core.bus import EventBus
from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.keepalive_http import LeanClient
from core.rate_limit import chat_limiter
from core.redis_client import Keys, make_redis
from core.secrets import public_visitor_id
from crm import CitizenDirectory, ScreenPopAudits, build_screen_pop
from flow.bot_actions import build_action_registry
from flow.dispatch import Dispatcher
from handoff import ConversationStore, Ownership, writer_for
from handoff.console import AgentConsole
from hub.auth import Accounts
from kb_sync import AnswerService, KbStore

log = logging.getLogger(__name__)

CLOSE_STEP_SECONDS = 5.0


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
        """Release everything; a step that does not finish in time is logged and skipped, so that a
        worker's shutdown never hangs (a stuck socket close must not keep a restart waiting)."""
        for name, step in (
            ("recovery", self.dispatcher.aclose),  # the unanswered-message heartbeat and sweeper
            ("transcript writer", writer_for(self.engine).aclose),  # what it has accepted is written first
            ("event bus", self.bus.stop),
            ("rasa client", self.rasa.aclose),
            ("redis", self.redis.aclose),
            ("database", self.engine.dispose),
        ):
            try:
                await asyncio.wait_for(step(), CLOSE_STEP_SECONDS)
            except TimeoutError:
                log.warning("closing the %s took over %s s; going on without it", name, CLOSE_STEP_SECONDS)


_frozen = False


def freeze_startup_objects() -> None:
    """Move what the worker has built so far (modules, the ORM's metadata, the routes, the services)
    out of the cyclic collector's full passes, once per process: a full collection walking these
    ~150k long-lived objects paused the event loop for hundreds of milliseconds under load, which
    every screen-pop and reply in flight then waited for. Refcounting still frees them."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def rasa_http(settings: Settings) -> httpx.AsyncClient:
    """The hub's HTTP client for its Rasa server: the lean keep-alive transport, and a short path
    for its JSON POSTs (core.keepalive_http)."""
    timeout = float(settings.get("bot.rasa_timeout_seconds", 10))
    return LeanClient(base_url=settings.rasa_url.rstrip("/"), timeout=httpx.Timeout(timeout, connect=3.0))


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
    rasa = RasaClient(settings.rasa_url, client=rasa_http(settings), token=settings.rasa_token)
    dispatcher = Dispatcher(settings, conversations, citizens, ownership, bus, rasa)
    actions = build_action_registry(dispatcher, answers, kb)

    async def state_frame(conversation_id: str) -> dict[str, Any]:
        # owner, queue_position, eta_seconds, group, agent_name (handoff.service.Handoff.state_frame)
        return await dispatcher.handoff.state_frame(conversation_id)

    async def history(conversation_id: str) -> list[dict[str, Any]]:
        # a supervisor's whisper and an agent's internal note are never shown to the citizen
        return [m.to_json() for m in await conversations.transcript(conversation_id) if not m.internal]

    async def screen_pop(conversation_id: str, user: Any) -> dict[str, Any]:
        # audited by the console once the frame is on the agent's screen (audit_pop below)
        return await build_screen_pop(
            citizens, conversations, conversation_id, viewer_id=user.id, viewer_role=user.role, audit=False
        )

    audits = ScreenPopAudits(sessions)

    async def audit_pop(conversation_id: str, user: Any, citizen_id: Any) -> None:
        await audits.write(user.id, citizen_id, conversation_id)

    web = WebChannel(
        dispatcher,
        state_frame,
        history,
        max_frame_chars=int(settings.get("channels.web.max_frame_chars", 4000)),
        max_text_chars=int(settings.get("channels.web.max_text_chars", 1000)),
        state_frames=dispatcher.handoff.state_frames,
        public_id=functools.partial(public_visitor_id, settings.secret_key),
        allow_message=chat_limiter(redis, keys.prefix, settings),
    )
    dispatcher.register_channel(web)
    console = AgentConsole(
        dispatcher, ownership, conversations, screen_pop, dispatcher.handoff.queue_items,
        int(settings.get("handoff.agent_capacity", 5)), suggest=answers.suggest, audit_screen_pop=audit_pop,
    )
    # the console's handler only queues frames (its screen-pops are built in each agent's outbox):
    # first, so an agent's screen-pop never waits for the web channel's state frames
    bus.subscribe(console.on_event)
    bus.subscribe(web.on_event)
    accounts = Accounts(sessions, redis, keys, int(settings.get("hub.session_hours", 12)))
    freeze_startup_objects()
    return Services(
        settings, engine, sessions, redis, keys, bus, accounts, conversations, citizens, ownership, kb, answers, rasa,
        dispatcher, actions, web, console,
    )

"""Everything one hub worker holds, built once at start-up (the composition root)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import ActionRegistry, RasaClient
from channels.telegram import TelegramChannel, TelegramConfig
from channels.web import WebChannel
from channels.wechat import WeChatAPI, WeChatChannel, WeChatConfig
from core.bus import EventBus
from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.events import MessageJson
from core.keepalive_http import LeanClient
from core.rate_limit import chat_limiter
from core.redis_client import Keys, make_redis
from core.secrets import public_visitor_id
from core.uploads import ChannelFiles
from crm import CitizenDirectory, ScreenPopAudits, build_screen_pop
from flow.bot_actions import build_action_registry
from flow.channel_records import ChannelRecords
from flow.dispatch import Dispatcher
from handoff import AgentConsole, ConversationStore, Ownership, writer_for
from hub.auth import Accounts, Policy
from hub.voice_path import build_voice, run_voice
from kb_sync import AnswerService, KbStore
from qa import QaCenter
from voice_bridge import VoiceBridge

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
    qa: QaCenter
    wechat_config: WeChatConfig
    telegram_config: TelegramConfig
    wechat: WeChatChannel | None = None  # None: not enabled in the settings
    telegram: TelegramChannel | None = None
    voice: VoiceBridge | None = None  # the call center (voice.enabled)

    async def _stop_voice(self) -> None:
        """Hang up and stop the SIP user agent, then end its lock keeper (which releases the lock)."""
        if self.voice is None:
            return
        await self.voice.stop()
        runner = self.voice.runner
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    async def close(self) -> None:
        """Release everything; a step that does not finish in time is logged and skipped, so that a
        worker's shutdown never hangs (a stuck socket close must not keep a restart waiting)."""
        for name, step in (
            ("call center", self._stop_voice),
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


async def _nothing() -> None:
    return None


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

    async def history(conversation_id: str) -> list[MessageJson]:
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
        dispatcher.handoff.state_frame,  # owner, queue_position, eta_seconds, group, agent_name
        history,
        max_frame_chars=int(settings.get("channels.web.max_frame_chars", 4000)),
        max_text_chars=int(settings.get("channels.web.max_text_chars", 1000)),
        state_frames=dispatcher.handoff.state_frames,
        public_id=functools.partial(public_visitor_id, settings.secret_key),
        allow_message=chat_limiter(redis, keys.prefix, settings),
    )
    dispatcher.register_channel(web)
    qa = QaCenter(sessions, settings)  # its scorer loop is started by hub/routes/qa.py
    wechat_config, telegram_config = WeChatConfig.from_settings(settings), TelegramConfig.from_settings(settings)
    wechat, telegram = platform_channels(settings, redis, keys, dispatcher, citizens, wechat_config, telegram_config)
    console = AgentConsole(
        dispatcher.handoff, dispatcher, bus, conversations, screen_pop,
        suggest=answers.suggest, audit_screen_pop=audit_pop,
        screen=qa.screen,
    )
    # the console's handler only queues frames (its screen-pops are built in each agent's outbox):
    # first, so an agent's screen-pop never waits for the web channel's state frames
    bus.subscribe(console.on_event)
    bus.subscribe(web.on_event)
    accounts = Accounts(sessions, redis, keys, policy=Policy.from_settings(settings.get))
    services = Services(
        settings, engine, sessions, redis, keys, bus, accounts, conversations, citizens, ownership, kb, answers, rasa,
        dispatcher, actions, web, console, qa, wechat_config, telegram_config, wechat, telegram,
    )
    services.voice = build_voice(services)
    if services.voice is not None:  # the SIP user agent runs in the worker that holds the lock
        services.voice.runner = asyncio.create_task(run_voice(services.voice, redis, keys.prefix + "voice:ua"))
    freeze_startup_objects()
    return services


def platform_channels(
    settings: Settings,
    redis: aioredis.Redis,
    keys: Keys,
    dispatcher: Dispatcher,
    citizens: CitizenDirectory,
    wechat_config: WeChatConfig,
    telegram_config: TelegramConfig,
) -> tuple[WeChatChannel | None, TelegramChannel | None]:
    """The WeChat and Telegram channels the settings enable, registered with the Dispatcher, so
    bot, system and agent messages of their conversations leave from whichever worker made them.
    Their routes (hub/routes/wechat.py, telegram.py) start and stop them with the server."""
    records = ChannelRecords(dispatcher, citizens)
    wechat = telegram = None
    if wechat_config.enabled:
        api = WeChatAPI(wechat_config, redis, keys)
        files = ChannelFiles(settings)  # citizens' images and voice, for the agent
        wechat = WeChatChannel(wechat_config, dispatcher, records, redis, keys, api, files)
        dispatcher.register_channel(wechat)
    if telegram_config.enabled:
        telegram = TelegramChannel(telegram_config, dispatcher, records)
        dispatcher.register_channel(telegram)
    return wechat, telegram

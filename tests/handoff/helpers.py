"""An in-process hub for handoff tests: the real Dispatcher, Ownership, Handoff and stores on a
real Redis and a real database; Rasa replaced by a stub that runs the hub's own actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select

from bot import BotReply
from channels import InboundMessage
from core.bus import EventBus
from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.models import Citizen, ConversationEvent, Message, User
from core.redis_client import Keys
from crm import CitizenDirectory
from flow.bot_actions import build_action_registry
from flow.dispatch import Dispatcher
from handoff import ConversationStore, Ownership
from hub.auth import StaffUser
from kb_sync import AnswerOutcome, KbAnswer

AGENTS = [f"agent{n}" for n in range(1, 9)]


@dataclass
class FakeEntry:
    keywords: list[str]


@dataclass
class FakeKb:
    entries: dict[str, FakeEntry] = field(default_factory=dict)

    async def get(self, entry_id: str) -> FakeEntry | None:
        return self.entries.get(entry_id)


@dataclass
class FakeAnswers:
    """question text → (entry id, branch, answer); anything else is declined."""

    known: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    kb: FakeKb | None = None

    async def answer(self, text: str) -> AnswerOutcome:
        if text in self.known:
            entry_id, branch, answer = self.known[text]
            keywords = tuple(self.kb.entries[entry_id].keywords) if self.kb and entry_id in self.kb.entries else ()
            return AnswerOutcome(KbAnswer(entry_id, branch, text, answer, answer, "", keywords, 0.99), [])
        return AnswerOutcome(None, [])


class FakeRasa:
    """Classifies by a table (default kb_question) and runs the hub's action for the intent."""

    ACTIONS = {"kb_question": "action_kb_answer", "request_human": "action_handoff", "complaint": "action_handoff"}

    def __init__(self) -> None:
        self.registry: Any = None
        self.intents: dict[str, str] = {}
        self.confidence: dict[str, float] = {}  # text -> the intent's confidence (default: none given)
        self.asked: list[str] = []

    async def send(self, sender_id: str, text: str, metadata: dict[str, Any] | None = None) -> list[BotReply]:
        self.asked.append(text)
        intent = self.intents.get(text, "kb_question")
        payload = {
            "next_action": self.ACTIONS[intent],
            "sender_id": sender_id,
            "tracker": {"sender_id": sender_id, "latest_message": {"text": text, "intent": {
                "name": intent, **({"confidence": self.confidence[text]} if text in self.confidence else {})}}},
        }
        status, body = await self.registry.handle_http(payload)
        assert status == 200, body
        return [BotReply.from_json(item) for item in body.get("responses", [])]

    async def aclose(self) -> None:
        return None


@dataclass
class Hub:
    settings: Settings
    engine: Any
    sessions: Any
    redis: aioredis.Redis
    keys: Keys
    bus: EventBus
    ownership: Ownership
    conversations: ConversationStore
    citizens: CitizenDirectory
    dispatcher: Dispatcher
    rasa: FakeRasa
    answers: FakeAnswers
    kb: FakeKb
    users: dict[str, StaffUser]

    @property
    def handoff(self) -> Any:
        return self.dispatcher.handoff

    async def close(self) -> None:
        await self.engine.dispose()

    async def citizen_writes(self, visitor: str, text: str, client_id: str | None = None) -> Any:
        inbound = InboundMessage("web", visitor, text, channel_message_id=f"{visitor}:{client_id or uuid.uuid4().hex}")
        await self.dispatcher.on_inbound(inbound)
        return await self.dispatcher.open_conversation("web", visitor)

    async def conversation(self, visitor: str) -> Any:
        return await self.dispatcher.open_conversation("web", visitor)

    async def messages(self, conversation_id: str) -> list[Message]:
        async with self.sessions() as session:
            result = await session.execute(
                select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
            )
            return list(result.scalars())

    async def events(self, conversation_id: str) -> list[ConversationEvent]:
        async with self.sessions() as session:
            result = await session.execute(
                select(ConversationEvent)
                .where(ConversationEvent.conversation_id == conversation_id)
                .order_by(ConversationEvent.id)
            )
            return list(result.scalars())

    async def tag_citizen(self, citizen_id: int, tags: list[str]) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(Citizen, citizen_id)
            row.tags = tags

    def at(self, moment: datetime) -> None:
        self.handoff.clock = lambda: moment


async def make_hub(
    settings: Settings, redis_client: aioredis.Redis, overrides: dict[str, Any] | None = None, seed_users: bool = True
) -> Hub:
    settings = settings.with_overrides(overrides or {})
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    keys = Keys(settings.redis_prefix)
    bus = EventBus(redis_client, keys.events_channel())
    ownership = Ownership(redis_client, keys, sessions, bus)
    conversations = ConversationStore(sessions)
    citizens = CitizenDirectory(sessions)
    rasa = FakeRasa()
    dispatcher = Dispatcher(settings, conversations, citizens, ownership, bus, rasa)  # type: ignore[arg-type]
    kb = FakeKb()
    answers = FakeAnswers(kb=kb)
    rasa.registry = build_action_registry(dispatcher, answers, kb)  # type: ignore[arg-type]
    users: dict[str, StaffUser] = {}
    async with sessions() as session, session.begin():
        for index, name in enumerate([*AGENTS, "super1"], start=1):
            role = "supervisor" if name.startswith("super") else "agent"
            if seed_users:
                session.add(User(id=index, username=name, display_name=f"坐席{index}", password_hash="x", role=role))
            users[name] = StaffUser(index, name, f"坐席{index}", role)
    return Hub(
        settings,
        engine,
        sessions,
        redis_client,
        keys,
        bus,
        ownership,
        conversations,
        citizens,
        dispatcher,
        rasa,
        answers,
        kb,
        users,
    )

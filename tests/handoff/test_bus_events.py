"""Live events between workers: typed on both ends, the same JSON on the wire, and a worker of
another release (a field more or less, a kind it does not know) neither breaks nor is broken."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

from core.bus import EventBus
from core.config import Settings
from core.events import (
    EVENT_TYPES,
    MessageEvent,
    PresenceEvent,
    StateEvent,
    TypingEvent,
    WatchEvent,
    decode,
    encode,
)
from core.redis_client import Keys


async def test_two_workers_exchange_typed_events_over_redis(settings: Settings, redis_client: aioredis.Redis) -> None:
    channel = Keys(settings.redis_prefix).events_channel()
    sender, receiver = EventBus(redis_client, channel), EventBus(redis_client, channel)
    heard: list[object] = []

    async def collect(event: object) -> None:
        heard.append(event)

    receiver.subscribe(collect)
    await receiver.start()
    raw = redis_client.pubsub(ignore_subscribe_messages=True)
    await raw.subscribe(channel)
    try:
        message = {
            "id": 7, "conversation_id": "c1", "sender": "agent", "sender_name": "坐席1", "text": "您好",
            "created_at": "2026-01-01T00:00:00+00:00", "meta": {"client_id": "x"},
        }
        sent = [
            MessageEvent("c1", "web", 3, message),  # type: ignore[arg-type]
            StateEvent("c1", "assign", "agent", "queued", 3, "综合", {"auto": True}),
            TypingEvent("c1", "bot"),
            PresenceEvent(3, "away"),
        ]
        for event in sent:
            await sender.publish(event)
        for _ in range(250):
            if len(heard) >= len(sent):
                break
            await asyncio.sleep(0.02)
        assert heard == sent
        # on the wire: one JSON object per event, its kind beside its fields (what every release reads)
        wire = []
        while len(wire) < len(sent):
            got = await raw.get_message(timeout=1.0)
            if got is not None:
                wire.append(json.loads(got["data"]))
        assert wire[0] == {
            "kind": "message", "conversation_id": "c1", "channel": "web", "agent_id": 3, "message": message,
        }
        assert wire[1]["kind"] == "state" and wire[1]["data"] == {"auto": True} and wire[1]["previous"] == "queued"
        assert wire[2] == {"kind": "typing", "conversation_id": "c1", "sender": "bot", "agent_id": None, "active": True}
    finally:
        await raw.aclose()
        await receiver.stop()


def test_events_of_another_release_are_read_or_skipped() -> None:
    # an older worker's bot typing event had neither agent_id nor active
    assert decode('{"kind": "typing", "conversation_id": "c", "sender": "bot"}') == TypingEvent("c", "bot", None, True)
    # a newer worker's extra field is dropped, the rest kept
    assert decode('{"kind": "watch", "supervisor_id": 9, "conversation_id": "c", "on": false, "why": "x"}') == (
        WatchEvent(9, "c", False)
    )
    # a kind only a newer worker knows, or an event missing what this one needs, is skipped
    assert decode('{"kind": "call_ringing", "line": 1}') is None
    assert decode('{"kind": "presence", "agent_id": 1}') is None
    # every kind survives the trip
    for kind, cls in EVENT_TYPES.items():
        assert cls.kind == kind
    state = StateEvent("c", "close", "bot", "agent", None, None, {"previous_agent_id": 4})
    assert decode(encode(state)) == state and state.previous_agent_id == 4

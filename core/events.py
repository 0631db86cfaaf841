"""The live events every hub worker hears on the bus (core.bus): their kinds and payloads.

An event is a small frozen dataclass; on the wire (Redis pub/sub) it is one JSON object, its
kind under `"kind"` beside its fields, exactly as the workers have always exchanged them, so a
worker of the previous release and a worker of this one understand each other. Every worker
decodes every event, so decoding is one `json.loads` and one constructor call.

A new kind: a dataclass here with a `kind` class variable, listed in `EVENT_TYPES`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Final, TypedDict

log = logging.getLogger(__name__)

MESSAGE: Final = "message"  # a transcript line the citizen sees (and the serving agent)
TYPING: Final = "typing"  # someone is writing: the citizen (to the agent), the agent or the bot (to the citizen)
STATE: Final = "state"  # an ownership transition (handoff.state.Ownership.apply)
NOTE: Final = "note"  # an agent's 内部备注: colleagues only
WHISPER: Final = "whisper"  # a supervisor's whisper to the serving agent: never delivered to the citizen
WATCH: Final = "watch"  # a supervisor started or stopped watching a conversation
PRESENCE: Final = "presence"  # an agent's presence changed
CITIZEN_PRESENCE: Final = "citizen_presence"  # the citizen's chat page of a served conversation opened or closed
VOICE_COMMAND: Final = "voice_command"  # an agent's call command for the worker holding the SIP stack (voice_bridge)


class MessageJson(TypedDict):
    """A transcript line as screens and channels get it (handoff.MessageView.to_json)."""

    id: int
    conversation_id: str
    sender: str
    sender_name: str
    text: str
    created_at: str
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MessageEvent:
    kind: ClassVar[str] = MESSAGE
    conversation_id: str
    channel: str
    agent_id: int | None  # who serves the conversation now (their console shows it)
    message: MessageJson


@dataclass(frozen=True, slots=True)
class TypingEvent:
    kind: ClassVar[str] = TYPING
    conversation_id: str
    sender: str  # citizen / agent / bot
    agent_id: int | None = None
    active: bool = True  # False: stopped (the agent cleared the reply box)


@dataclass(frozen=True, slots=True)
class StateEvent:
    kind: ClassVar[str] = STATE
    conversation_id: str
    transition: str
    owner: str  # handoff.Owner's value now
    previous: str  # and before
    agent_id: int | None
    group: str | None
    data: dict[str, Any] = field(default_factory=dict)  # the transition's details (reason, memo, auto …)

    @property
    def previous_agent_id(self) -> int | None:
        found = self.data.get("previous_agent_id")
        return None if found is None else int(found)


@dataclass(frozen=True, slots=True)
class NoteEvent:
    kind: ClassVar[str] = NOTE
    conversation_id: str
    agent_id: int | None
    message: MessageJson


@dataclass(frozen=True, slots=True)
class WhisperEvent:
    kind: ClassVar[str] = WHISPER
    conversation_id: str
    agent_id: int | None
    message: MessageJson


@dataclass(frozen=True, slots=True)
class WatchEvent:
    kind: ClassVar[str] = WATCH
    supervisor_id: int
    conversation_id: str
    on: bool


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    kind: ClassVar[str] = PRESENCE
    agent_id: int
    status: str


@dataclass(frozen=True, slots=True)
class CitizenPresenceEvent:
    kind: ClassVar[str] = CITIZEN_PRESENCE
    conversation_id: str
    agent_id: int | None  # the serving agent, whose console shows whether the citizen is still there
    present: bool


@dataclass(frozen=True, slots=True)
class VoiceCommandEvent:
    kind: ClassVar[str] = VOICE_COMMAND
    action: str  # hold / resume / hangup / dial
    agent_id: int
    call_id: str | None = None
    conversation_id: str | None = None
    number: str | None = None  # dial: the number to call
    citizen_id: int | None = None  # dial: the citizen called, when known


Event = (
    MessageEvent | TypingEvent | StateEvent | NoteEvent | WhisperEvent | WatchEvent | PresenceEvent
    | CitizenPresenceEvent | VoiceCommandEvent
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        MessageEvent, TypingEvent, StateEvent, NoteEvent, WhisperEvent, WatchEvent, PresenceEvent,
        CitizenPresenceEvent, VoiceCommandEvent,
    )
}
_FIELDS: dict[type[Any], tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in EVENT_TYPES.values()}


def encode(event: Event) -> str:
    """The event as it travels: `{"kind": …, <its fields>}`."""
    payload: dict[str, Any] = {"kind": event.kind}
    for name in _FIELDS[type(event)]:
        payload[name] = getattr(event, name)
    return json.dumps(payload, ensure_ascii=False, default=str)


def decode(raw: str | bytes) -> Event | None:
    """The event a worker published; None for a kind this worker does not know (a newer worker's)."""
    payload = json.loads(raw)
    cls = EVENT_TYPES.get(payload.pop("kind", None))
    if cls is None:
        return None
    try:
        return cls(**payload)
    except TypeError:  # a field added or dropped by another release: keep what both know
        known = {name: payload[name] for name in _FIELDS[cls] if name in payload}
        try:
            return cls(**known)
        except TypeError:
            log.warning("dropped a %s event missing fields: %s", cls.kind, sorted(payload))
            return None

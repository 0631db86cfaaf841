"""Everything voice_bridge reads of handoff, in one place: the ownership change events handoff
publishes on the bus (core.events.StateEvent, see handoff.state.Ownership.apply) and its owner names.

Called on handoff: `handoff.Owner` (values bot / queued / agent). The queue position and the
handoff itself go through the MessagePath the app passes in (hub/services.py)."""

from __future__ import annotations

from dataclasses import dataclass

from core.events import Event, StateEvent
from handoff import Owner

OWNERS = frozenset(owner.value for owner in Owner)


@dataclass(frozen=True)
class StateChange:
    conversation_id: str
    owner: str
    agent_id: int | None
    transition: str


def state_change(event: Event) -> StateChange | None:
    if not isinstance(event, StateEvent) or event.owner not in OWNERS:
        return None
    return StateChange(event.conversation_id, event.owner, event.agent_id, event.transition or "")

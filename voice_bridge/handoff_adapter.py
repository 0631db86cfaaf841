"""Everything voice_bridge reads of handoff, in one place: the ownership change events handoff
publishes on the bus (`kind: state`, see handoff.state.Ownership.apply) and its owner names.

Called on handoff: `handoff.Owner` (values bot / queued / agent). The queue position and the
handoff itself go through the MessagePath the app passes in (hub/services.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handoff import Owner

OWNERS = frozenset(owner.value for owner in Owner)


@dataclass(frozen=True)
class StateChange:
    conversation_id: str
    owner: str
    agent_id: int | None
    transition: str


def state_change(event: dict[str, Any]) -> StateChange | None:
    if event.get("kind") != "state" or event.get("owner") not in OWNERS:
        return None
    agent = event.get("agent_id")
    return StateChange(
        str(event.get("conversation_id")), str(event["owner"]), None if agent in (None, "") else int(agent),
        str(event.get("transition") or ""),
    )

"""Rasa's custom-action protocol, served by the hub without rasa_sdk.

rasa_sdk pins an old Sanic and Python <= 3.10; the hub runs current Sanic on 3.11, so it
speaks the (small, JSON) protocol itself. This module has no web-framework imports: the
lead mounts ``ActionRegistry.handle_http`` at ``POST /actions/webhook``.

Protocol (Rasa 3.6 RemoteAction / rasa_sdk endpoint):
  request  ``{"next_action", "sender_id", "tracker": {...}, "domain": {...}, "version"}``
  200      ``{"events": [...], "responses": [{"text": ...} | {"custom": ...}]}``
  400      ``{"error", "action_name"}`` -> Rasa raises ActionExecutionRejection (a policy
           may then pick another action)
  404      ``{"error", "action_name"}`` for an action nobody registered
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionCall:
    """What a handler needs from Rasa's request, plus the raw tracker for the rest."""

    action_name: str
    sender_id: str
    latest_text: str
    intent: str | None
    confidence: float | None
    slots: dict[str, Any]
    tracker: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    input_channel: str | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ActionCall:
        tracker = payload.get("tracker") or {}
        latest = tracker.get("latest_message") or {}
        intent = latest.get("intent") or {}
        # REST-channel metadata (conversation id, channel, ...): Rasa 3.6 copies it into
        # latest_message; older trackers only have it on the last user event.
        metadata = latest.get("metadata")
        if metadata is None:
            for event in reversed(tracker.get("events") or []):
                if isinstance(event, dict) and event.get("event") == "user":
                    metadata = event.get("metadata")
                    break
        confidence = intent.get("confidence")
        return cls(
            action_name=str(payload.get("next_action") or ""),
            sender_id=str(payload.get("sender_id") or tracker.get("sender_id") or ""),
            latest_text=str(latest.get("text") or ""),
            intent=intent.get("name"),
            confidence=float(confidence) if confidence is not None else None,
            slots=dict(tracker.get("slots") or {}),
            tracker=tracker,
            metadata=metadata if isinstance(metadata, dict) else {},
            input_channel=tracker.get("latest_input_channel"),
        )


@dataclass
class ActionResult:
    """A handler's answer. ``buttons`` attach to the last text (e.g. a 转人工 button)."""

    texts: list[str] = field(default_factory=list)
    custom: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    buttons: list[dict[str, Any]] = field(default_factory=list)

    def to_protocol(self) -> dict[str, Any]:
        responses: list[dict[str, Any]] = [{"text": t} for t in self.texts]
        if self.buttons:
            if responses:
                responses[-1]["buttons"] = list(self.buttons)
            else:
                responses.append({"buttons": list(self.buttons)})
        responses += [{"custom": c} for c in self.custom]
        for event in self.events:
            if not isinstance(event, dict) or not isinstance(event.get("event"), str):
                raise TypeError(f"invalid Rasa event (needs an 'event' name): {event!r}")
        return {"events": list(self.events), "responses": responses}


class ActionRejected(Exception):
    """Raise in a handler to reject execution (HTTP 400): Rasa lets a policy choose again."""


Handler = Callable[[ActionCall], Awaitable[ActionResult]]


class ActionRegistry:
    """Action name -> async handler; turns Rasa's request into a protocol response."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, handler: Handler) -> None:
        if name in self._handlers:
            raise ValueError(f"action {name!r} is already registered")
        self._handlers[name] = handler

    def action(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of register()."""

        def deco(handler: Handler) -> Handler:
            self.register(name, handler)
            return handler

        return deco

    def names(self) -> list[str]:
        """For rasa_sdk's ``GET /actions`` equivalent: ``[{"name": n} for n in names()]``."""
        return sorted(self._handlers)

    async def handle_http(self, payload: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one action call; never raises."""
        if not isinstance(payload, dict) or not payload.get("next_action"):
            # action_name is included so Rasa's 400 handling (which reads it) cannot crash.
            name = payload.get("next_action", "") if isinstance(payload, dict) else ""
            return 400, {"error": "Invalid body request", "action_name": name}
        name = str(payload["next_action"])
        handler = self._handlers.get(name)
        if handler is None:
            logger.error("Rasa asked for unregistered action %r", name)
            return 404, {
                "error": f"No registered action found for name '{name}'.",
                "action_name": name,
            }
        try:
            result = await handler(ActionCall.from_payload(payload))
            return 200, result.to_protocol()
        except ActionRejected as exc:
            message = str(exc) or f"Custom action '{name}' rejected execution."
            return 400, {"error": message, "action_name": name}
        except Exception as exc:  # a bug in one action must not take the webhook down
            logger.exception("custom action %r failed", name)
            return 500, {"error": f"{type(exc).__name__}: {exc}", "action_name": name}

    async def handle(self, payload: Any) -> dict[str, Any]:
        """The response body only (see handle_http for the status code)."""
        _, body = await self.handle_http(payload)
        return body

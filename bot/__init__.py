"""The bot package: the Rasa project, its training, and the hub's side of Rasa's HTTP APIs.

Rasa itself runs in .venv-rasa (Python 3.10) as a separate server; nothing here imports
it. Exports resolve lazily so ``python -m bot.training`` (stdlib + PyYAML only, run by
scripts/setup.sh) does not import httpx or re-import itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.actions import ActionCall, ActionRegistry, ActionRejected, ActionResult
    from bot.client import (
        BotReply,
        ParseResult,
        RasaClient,
        RasaError,
        RasaTimeout,
        RasaUnavailable,
    )
    from bot.server import start_rasa, stop_rasa, wait_ready
    from bot.training import ensure_model, training_hash

_EXPORTS = {
    "ActionCall": "bot.actions",
    "ActionRegistry": "bot.actions",
    "ActionRejected": "bot.actions",
    "ActionResult": "bot.actions",
    "BotReply": "bot.client",
    "ParseResult": "bot.client",
    "RasaClient": "bot.client",
    "RasaError": "bot.client",
    "RasaTimeout": "bot.client",
    "RasaUnavailable": "bot.client",
    "ensure_model": "bot.training",
    "training_hash": "bot.training",
    "start_rasa": "bot.server",
    "stop_rasa": "bot.server",
    "wait_ready": "bot.server",
}

__all__ = [
    "ActionCall",
    "ActionRegistry",
    "ActionRejected",
    "ActionResult",
    "BotReply",
    "ParseResult",
    "RasaClient",
    "RasaError",
    "RasaTimeout",
    "RasaUnavailable",
    "ensure_model",
    "start_rasa",
    "stop_rasa",
    "training_hash",
    "wait_ready",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bot' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

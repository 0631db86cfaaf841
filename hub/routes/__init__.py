"""Feature blueprints mounted on the hub app. Each module exposes `bp` (a sanic.Blueprint);
its handlers reach the worker's services through `request.app.ctx.services`."""

from __future__ import annotations

from importlib import import_module

from sanic import Blueprint

# One line per feature module (keep sorted).
MODULES: list[str] = [
    "accounts",
    "admin",
    "assist",
    "board_today",
    "calls",
    "crm",
    "handoff",
    "kb",
    "ops",
    "phone_tickets",
    "qa",
    "telegram",
    "web_embed",
    "web_previous",
    "web_widget",
    "wechat",
]


def blueprints() -> list[Blueprint]:
    return [import_module(f"hub.routes.{name}").bp for name in MODULES]

"""The Telegram webhook (`POST /telegram/webhook`); the channel's start and stop.

Every worker's services build the channel and register it with the Dispatcher
(hub.services.platform_channels), so bot, system and agent messages of Telegram conversations
leave through python-telegram-bot's `Bot.send_message` from whichever worker produced them.
"""

from __future__ import annotations

import logging

from sanic import Blueprint, Request, Sanic, response
from sanic.response import HTTPResponse

from channels.telegram import SECRET_HEADER, TelegramChannel

log = logging.getLogger(__name__)

bp = Blueprint("telegram")


@bp.after_server_start
async def start_telegram(app: Sanic) -> None:
    services = app.ctx.services
    app.ctx.telegram_config = services.telegram_config
    channel = services.telegram  # built with the worker's services (hub.services.platform_channels)
    if channel is None:
        return
    await channel.start()
    app.ctx.telegram = channel


@bp.before_server_stop
async def stop_telegram(app: Sanic) -> None:
    channel = getattr(app.ctx, "telegram", None)
    if channel is not None:
        await channel.aclose()


@bp.post("/telegram/webhook")
async def telegram_webhook(request: Request) -> HTTPResponse:
    channel: TelegramChannel | None = getattr(request.app.ctx, "telegram", None)
    if channel is None:
        config = getattr(request.app.ctx, "telegram_config", None)
        if config is not None and not config.enabled:
            return response.json({"ok": False, "reason": "Telegram 渠道未启用。", "code": "disabled"}, status=404)
        return response.json({"ok": False, "reason": "服务正在启动，请稍后重试。", "code": "starting"}, status=503)
    if not channel.secret_ok(request.headers.get(SECRET_HEADER)):
        return response.json({"ok": False, "reason": "密钥校验失败。", "code": "bad_secret"}, status=403)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > channel.config.max_body_bytes:
        return response.json({"ok": False, "reason": "请求体过大。", "code": "too_large"}, status=413)
    reply = await channel.receive(request.headers.get(SECRET_HEADER), request.body or b"")
    return response.json(reply.body, status=reply.status)

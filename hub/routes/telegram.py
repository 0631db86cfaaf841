"""The Telegram webhook (`POST /telegram/webhook`) and the channel's wiring.

Every worker builds the channel once the server has started and registers it with the
Dispatcher, so bot, system and agent messages of Telegram conversations leave through
python-telegram-bot's `Bot.send_message` from whichever worker produced them.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Blueprint, Request, Sanic, response
from sanic.response import HTTPResponse

from channels.telegram import TelegramChannel, TelegramConfig
from channels.telegram.channel import SECRET_HEADER

log = logging.getLogger(__name__)

bp = Blueprint("telegram")


class HubRecords:
    """System notes on a conversation (recorded and published like the Dispatcher's own messages,
    so the agent console shows them) and the citizen's name as Telegram gives it."""

    def __init__(self, services: Any) -> None:
        self._services = services

    async def note(
        self, conversation_id: str, text: str, meta: dict[str, Any], *, channel_message_id: str | None = None
    ) -> bool:
        services = self._services
        conversation = await services.conversations.get(conversation_id)
        if conversation is None:
            return False
        message, is_new = await services.conversations.record(
            conversation.id, conversation.channel, "system", text, channel_message_id=channel_message_id, meta=meta
        )
        if is_new:
            state = await services.ownership.state(conversation.id)
            await services.bus.publish(
                "message",
                conversation_id=conversation.id,
                channel=conversation.channel,
                agent_id=state.agent_id,
                message=message.to_json(),
            )
        return is_new

    async def set_name(self, citizen_id: int, name: str) -> None:
        citizen = await self._services.citizens.get(citizen_id)
        if citizen is not None and not citizen.name:
            await self._services.citizens.update(citizen_id, name=name)


@bp.after_server_start
async def start_telegram(app: Sanic) -> None:
    services = app.ctx.services
    config = TelegramConfig.from_settings(services.settings)
    app.ctx.telegram_config = config
    if not config.enabled:
        return
    channel = TelegramChannel(config, services.dispatcher, HubRecords(services))
    await channel.start()
    services.dispatcher.register_channel(channel)
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

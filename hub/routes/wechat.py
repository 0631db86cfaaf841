"""The WeChat Official Account server URL (`GET`/`POST /wechat`) and the channel's wiring.

The channel is built from the worker's services once the server has started and registered
with the Dispatcher, so bot, system and agent messages of WeChat conversations reach it.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Blueprint, Request, Sanic, response
from sanic.response import HTTPResponse

from channels.wechat import WeChatAPI, WeChatChannel, WeChatConfig
from core.uploads import ChannelFiles

log = logging.getLogger(__name__)

bp = Blueprint("wechat")


class HubRecords:
    """System notes on a conversation (recorded, then published like the Dispatcher's own
    messages so the agent console shows them) and what WeChat tells us about a citizen."""

    def __init__(self, services: Any) -> None:
        self._services = services

    async def note(
        self, conversation_id: str, text: str, meta: dict[str, Any], *, channel_message_id: str | None = None
    ) -> bool:
        conversation = await self._services.conversations.get(conversation_id)
        if conversation is None:
            return False
        _message, is_new = await self._services.dispatcher.note(
            conversation, text, meta, channel_message_id=channel_message_id
        )
        return is_new

    async def set_profile(self, citizen_id: int, *, name: str | None, unionid: str | None) -> None:
        services = self._services
        if name:
            citizen = await services.citizens.get(citizen_id)
            if citizen is not None and not citizen.name:  # never overwrite a name staff entered
                await services.citizens.update(citizen_id, name=name)
        if unionid:
            await services.citizens.link(citizen_id, "wechat_unionid", unionid[:128])


def _channel(request: Request) -> WeChatChannel | None:
    return getattr(request.app.ctx, "wechat", None)


def _reply(status: int, body: str, content_type: str) -> HTTPResponse:
    return response.text(body, status=status, content_type=content_type)


@bp.after_server_start
async def start_wechat(app: Sanic) -> None:
    services = app.ctx.services
    # every worker runs the heartbeat and sweeper that answer messages a stopped worker stored
    # but never answered (flow.recovery): WeChat's retries are what most need it
    services.dispatcher.start_background()
    config = WeChatConfig.from_settings(services.settings)
    app.ctx.wechat_config = config
    if not config.enabled:
        return
    api = WeChatAPI(config, services.redis, services.keys.prefix)
    records = HubRecords(services)
    files = ChannelFiles(services.settings)  # citizens' images and voice, for the agent
    channel = WeChatChannel(config, services.dispatcher, records, services.redis, services.keys.prefix, api, files)
    services.dispatcher.register_channel(channel)
    app.ctx.wechat = channel
    log.info("WeChat channel ready (%s mode)", config.mode)


@bp.before_server_stop
async def stop_wechat(app: Sanic) -> None:
    channel = getattr(app.ctx, "wechat", None)
    if channel is not None:
        await channel.aclose()


def _not_ready(request: Request) -> HTTPResponse:
    config = getattr(request.app.ctx, "wechat_config", None)
    if config is not None and not config.enabled:
        return response.json({"reason": "微信公众号渠道未启用。", "code": "disabled"}, status=404)
    return response.json({"reason": "服务正在启动，请稍后重试。", "code": "starting"}, status=503)


@bp.get("/wechat")
async def wechat_verify(request: Request) -> HTTPResponse:
    channel = _channel(request)
    if channel is None:
        return _not_ready(request)
    reply = channel.verify(request.args)
    return _reply(reply.status, reply.body, reply.content_type)


@bp.post("/wechat")
async def wechat_push(request: Request) -> HTTPResponse:
    channel = _channel(request)
    if channel is None:
        return _not_ready(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > channel.config.max_body_bytes:
        return _reply(413, f"请求体过大（上限 {channel.config.max_body_bytes} 字节）。", "text/plain; charset=utf-8")
    reply = await channel.receive(request.args, request.body or b"")
    return _reply(reply.status, reply.body, reply.content_type)

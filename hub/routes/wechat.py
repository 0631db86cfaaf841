"""The WeChat Official Account server URL (`GET`/`POST /wechat`); the channel's start and stop.

The worker's services build the channel and register it with the Dispatcher
(hub.services.platform_channels), so bot, system and agent messages of WeChat conversations reach it.
"""

from __future__ import annotations

import logging

from sanic import Blueprint, Request, Sanic, response
from sanic.response import HTTPResponse

from channels.wechat import WeChatChannel

log = logging.getLogger(__name__)

bp = Blueprint("wechat")


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
    app.ctx.wechat_config = services.wechat_config
    channel = services.wechat  # built with the worker's services (hub.services.platform_channels)
    if channel is None:
        return
    app.ctx.wechat = channel
    log.info("WeChat channel ready (%s mode)", channel.config.mode)


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

"""The WeChat Official Account channel (公众号): server URL, pushes, passive replies, the
customer-service message API and the custom menu. See channel.py for the five-second rule."""

from channels.wechat.api import WeChatAPI, WeChatAPIError
from channels.wechat.channel import (
    CHANNEL,
    Reply,
    WeChatChannel,
    WeChatFiles,
    WeChatHub,
    WeChatRecords,
    plan_for,
)
from channels.wechat.config import MenuAction, WeChatConfig
from channels.wechat.push import Push, PushError, open_push, verify_url

__all__ = [
    "CHANNEL",
    "MenuAction",
    "Push",
    "PushError",
    "Reply",
    "WeChatAPI",
    "WeChatAPIError",
    "WeChatChannel",
    "WeChatConfig",
    "WeChatFiles",
    "WeChatHub",
    "WeChatRecords",
    "open_push",
    "plan_for",
    "verify_url",
]

"""The Telegram channel (python-telegram-bot, webhook mode): verify and parse updates, send replies."""

from channels.telegram.channel import (
    CHANNEL,
    SECRET_HEADER,
    Reply,
    TelegramChannel,
    TelegramHub,
    TelegramRecords,
    parse_update,
)
from channels.telegram.config import TelegramConfig

__all__ = [
    "CHANNEL",
    "SECRET_HEADER",
    "Reply", "TelegramChannel", "TelegramConfig", "TelegramHub", "TelegramRecords", "parse_update"]

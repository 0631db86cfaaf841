"""The `telegram:` section of config.yml as a typed, validated value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False
    token: str = ""
    secret_token: str = ""
    api_base_url: str = "https://api.telegram.org/bot"
    api_timeout_seconds: float = 10.0
    max_body_bytes: int = 1024 * 1024
    welcome: str = "您好，欢迎使用在线咨询！请直接发送文字向我提问。"
    unsupported_reply: str = "抱歉，目前只能接收文字和图片消息，请用文字描述您的问题。"

    @classmethod
    def from_tree(cls, tree: dict[str, Any] | None) -> TelegramConfig:
        tree = dict(tree or {})
        known = set(cls.__dataclass_fields__)
        config = cls(**{key: value for key, value in tree.items() if key in known})
        config.validate()
        return config

    @classmethod
    def from_settings(cls, settings: Any) -> TelegramConfig:
        return cls.from_tree(settings.get("telegram") or {})

    def validate(self) -> None:
        if not self.enabled:
            return
        if not self.token or ":" not in self.token:
            raise ValueError("telegram.token (the token from @BotFather, '<id>:<secret>') is required when enabled")
        if not SECRET_TOKEN.match(self.secret_token or ""):
            raise ValueError("telegram.secret_token is required when enabled: 1-256 characters of A-Z a-z 0-9 _ -")
        if not self.api_base_url:
            raise ValueError("telegram.api_base_url must not be empty")

"""The `wechat:` section of config.yml as a typed, validated value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODES = ("plaintext", "compatible", "safe")


@dataclass(frozen=True)
class MenuAction:
    """What a CLICK menu key does: ask the bot a question (as if typed) or trigger an intent."""

    key: str
    name: str
    question: str = ""
    intent: str = ""


@dataclass(frozen=True)
class WeChatConfig:
    enabled: bool = False
    app_id: str = ""
    app_secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    mode: str = "safe"
    api_base_url: str = "https://api.weixin.qq.com"
    passive_reply_budget_ms: int = 4000
    max_body_bytes: int = 64 * 1024
    max_timestamp_skew_seconds: int = 300
    fetch_user_info: bool = True
    api_timeout_seconds: float = 5.0
    welcome: str = ""
    menu_hint: str = ""
    menu: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_tree(cls, tree: dict[str, Any] | None) -> WeChatConfig:
        tree = dict(tree or {})
        known = {name for name in cls.__dataclass_fields__}
        values = {key: value for key, value in tree.items() if key in known}
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def from_settings(cls, settings: Any) -> WeChatConfig:
        return cls.from_tree(settings.get("wechat") or {})

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"wechat.mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not self.enabled:
            return
        if not self.token:
            raise ValueError("wechat.token is required when the WeChat channel is enabled")
        if self.mode != "plaintext" and len(self.encoding_aes_key) != 43:
            raise ValueError("wechat.encoding_aes_key must be the 43 characters from the MP admin console")
        if self.mode != "plaintext" and not self.app_id:
            raise ValueError("wechat.app_id is required for compatible and safe modes")

    @property
    def budget_seconds(self) -> float:
        return max(0, int(self.passive_reply_budget_ms)) / 1000.0

    def menu_actions(self) -> dict[str, MenuAction]:
        """CLICK keys from the menu definition (top level and sub_button), with what each does."""
        actions: dict[str, MenuAction] = {}
        for button in self.menu or []:
            for item in [button, *(button.get("sub_button") or [])]:
                if isinstance(item, dict) and item.get("type") == "click" and item.get("key"):
                    actions[str(item["key"])] = MenuAction(
                        key=str(item["key"]),
                        name=str(item.get("name", "")),
                        question=str(item.get("question") or ""),
                        intent=str(item.get("intent") or ""),
                    )
        return actions

    def menu_for_wechat(self) -> dict[str, Any]:
        """The menu as `POST /cgi-bin/menu/create` wants it (our own mapping fields removed)."""
        allowed = {"type", "name", "key", "url", "media_id", "appid", "pagepath", "article_id"}

        def clean(item: dict[str, Any]) -> dict[str, Any]:
            out = {key: value for key, value in item.items() if key in allowed}
            if item.get("sub_button"):
                out["sub_button"] = [clean(sub) for sub in item["sub_button"]]
            return out

        return {"button": [clean(button) for button in self.menu or []]}

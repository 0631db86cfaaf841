"""Create the Official Account's custom menu from config.yml: `python -m channels.wechat.menu`.

`--dry-run` prints the JSON WeChat would receive (our own `question`/`intent` mapping
fields are stripped) without calling the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from channels.wechat.api import WeChatAPI, WeChatAPIError
from channels.wechat.config import WeChatConfig
from core.redis_client import Keys


async def create_menu(config: WeChatConfig, redis_url: str, prefix: str) -> dict:
    from redis.asyncio import from_url

    redis = from_url(redis_url, decode_responses=True)
    api = WeChatAPI(config, redis, Keys(prefix))
    try:
        return await api.create_menu(config.menu_for_wechat())
    finally:
        await api.aclose()
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    from core.config import load_settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="print the menu JSON and do nothing else")
    args = parser.parse_args(argv)
    settings = load_settings()
    config = WeChatConfig.from_settings(settings)
    menu = config.menu_for_wechat()
    if args.dry_run:
        print(json.dumps(menu, ensure_ascii=False, indent=2))
        return 0
    if not menu["button"]:
        print("config.yml 中没有 wechat.menu 菜单定义。", file=sys.stderr)
        return 2
    if not config.app_id or not config.app_secret:
        print("请先在 config.yml 中配置 wechat.app_id 和 wechat.app_secret。", file=sys.stderr)
        return 2
    try:
        asyncio.run(create_menu(config, settings.redis_url, settings.redis_prefix))
    except WeChatAPIError as error:
        print(f"创建菜单失败：{error.chinese}（错误码 {error.code}）", file=sys.stderr)
        return 1
    print(f"已创建菜单（{len(menu['button'])} 个一级菜单）。")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

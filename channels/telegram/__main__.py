"""Register or inspect the hub's webhook with Telegram.

python -m channels.telegram set-webhook https://hub.example.gov.cn   # <public_url>/telegram/webhook
python -m channels.telegram info
python -m channels.telegram delete-webhook
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from telegram import Bot

from channels.telegram.config import TelegramConfig

ALLOWED_UPDATES = ["message", "callback_query"]


async def set_webhook(config: TelegramConfig, public_url: str) -> bool:
    async with Bot(config.token, base_url=config.api_base_url) as bot:
        return await bot.set_webhook(
            url=public_url.rstrip("/") + "/telegram/webhook",
            secret_token=config.secret_token,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )


async def main(argv: list[str]) -> int:
    from core.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m channels.telegram")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("set-webhook").add_argument("public_url")
    sub.add_parser("delete-webhook")
    sub.add_parser("info")
    args = parser.parse_args(argv)
    config = TelegramConfig.from_settings(load_settings())
    if not config.token:
        print("telegram.token is not set (config.yml or ZWKF_TELEGRAM__TOKEN)", file=sys.stderr)
        return 2
    if args.command == "set-webhook":
        print("ok" if await set_webhook(config, args.public_url) else "failed")
        return 0
    async with Bot(config.token, base_url=config.api_base_url) as bot:
        if args.command == "delete-webhook":
            print("ok" if await bot.delete_webhook() else "failed")
        else:
            print(await bot.get_webhook_info())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

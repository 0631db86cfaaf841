"""A per-key fixed-window counter in Redis, shared by every hub worker (uploads, 👍/👎 votes, chat messages)."""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


async def within_limit(redis: aioredis.Redis, key: str, limit: int, window_seconds: int) -> bool:
    """Count one more use of `key`; False once it passes `limit` in the current window.

    The counter and its expiry are set in one transaction (a crash between the two must not
    leave a counter that never expires). When Redis fails the request is let through: a limit
    protects the hub, it must not take the feature down with Redis."""
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds, nx=True)
            count, _ = await pipe.execute()
    except Exception:
        log.exception("rate limit check failed for %s", key)
        return True
    return int(count) <= limit


FEEDBACK_PER_MINUTE = 20  # default of channels.web.feedback_per_minute
FEEDBACK_REFUSED = "评价过于频繁，请稍后再试。"


async def feedback_allowed(services: Any, visitor_id: str) -> bool:
    """A web visitor's 👍/👎 votes (POST /api/feedback) per minute, across every worker."""
    limit = int(services.settings.get("channels.web.feedback_per_minute", FEEDBACK_PER_MINUTE))
    key = f"{services.keys.prefix}web:feedback:{visitor_id[:128]}"
    return await within_limit(services.redis, key, limit, 60)


CHAT_PER_MINUTE = 30  # default of channels.web.messages_per_minute (one citizen)
CHAT_PER_MINUTE_PER_IP = 300  # default of channels.web.messages_per_minute_per_ip (an office behind one NAT)


def chat_limiter(redis: aioredis.Redis, prefix: str, settings: Any) -> Any:
    """`allowed(visitor_id, address)`: a web citizen's chat messages per minute, per visitor and per
    client address, across every worker (channels.web refuses the rest with a polite error frame)."""
    per_visitor = int(settings.get("channels.web.messages_per_minute", CHAT_PER_MINUTE))
    per_address = int(settings.get("channels.web.messages_per_minute_per_ip", CHAT_PER_MINUTE_PER_IP))

    async def allowed(visitor_id: str, address: str) -> bool:
        if not await within_limit(redis, f"{prefix}web:chat:v:{visitor_id[:64]}", per_visitor, 60):
            return False
        return not address or await within_limit(redis, f"{prefix}web:chat:ip:{address[:64]}", per_address, 60)

    return allowed

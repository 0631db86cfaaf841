"""A per-key fixed-window counter in Redis, shared by every hub worker (uploads, 👍/👎 votes)."""

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

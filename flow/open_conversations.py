"""A Redis cache of each citizen's open conversation per (channel, user), for the inbound hot path.

The view is kept *inside* the conversation's live-state hash (`Keys.conversation`, field
`view`), next to the owner. Closing a conversation deletes that hash (handoff.state), so the
cached view goes with it: the cache is invalidated by the same code path that closes. A
view is also trusted for `MAX_AGE_SECONDS` only, so a change made in the database alone (a CRM
merge moving the conversation to another profile) is seen within that time; `forget` drops
it at once. The owner, agent and group always come from the live hash, never from the cache.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from core.redis_client import Keys
from handoff import ConversationView

MAX_AGE_SECONDS = 60
POINTER_TTL_SECONDS = 86400

# KEYS: the (channel, user) pointer; ARGV: a conversation hash key around its id (head, tail)
# Returns false, or {view json, owner, agent id, group}
_GET_LUA = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
local key = ARGV[1] .. id .. ARGV[2]
local values = redis.call('HMGET', key, 'view', 'owner', 'agent_id', 'group')
if not values[1] or not values[2] then return false end
return {values[1], values[2], values[3] or '', values[4] or ''}
"""

# KEYS: the pointer, the conversation hash; ARGV: conversation id, view json, pointer ttl
# Only while the live state exists: a conversation closed meanwhile has no hash (or one without
# an owner) and must not come back through the cache.
_PUT_LUA = """
if redis.call('HEXISTS', KEYS[2], 'owner') == 0 then return 0 end
redis.call('HSET', KEYS[2], 'view', ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
"""


class OpenConversations:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._get = redis.register_script(_GET_LUA)
        self._put = redis.register_script(_PUT_LUA)
        self._conversation_key = list(keys.around(keys.conversation))

    def _pointer(self, channel: str, channel_user_id: str) -> str:
        return self._keys.open_conversation(channel, channel_user_id)

    async def get(self, channel: str, channel_user_id: str) -> ConversationView | None:
        found = await self._get(keys=[self._pointer(channel, channel_user_id)], args=self._conversation_key)
        if not found:
            return None
        raw, owner, agent_id, group = found
        try:
            data: dict[str, Any] = json.loads(raw)
            if time.time() - float(data["at"]) > MAX_AGE_SECONDS:
                return None
            return ConversationView(
                data["id"], int(data["citizen_id"]), channel, channel_user_id, "open", owner,
                int(agent_id) if agent_id else None, group or None, datetime.fromisoformat(data["started_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    async def put(self, conversation: ConversationView) -> None:
        view = json.dumps({
            "id": conversation.id, "citizen_id": conversation.citizen_id,
            "started_at": conversation.started_at.isoformat(), "at": time.time(),
        })
        await self._put(
            keys=[self._pointer(conversation.channel, conversation.channel_user_id),
                  self._keys.conversation(conversation.id)],
            args=[conversation.id, view, POINTER_TTL_SECONDS],
        )

    async def forget(self, conversation_id: str) -> None:
        """Drop a cached view now (after a change made to the conversation's record elsewhere)."""
        await self._redis.hdel(self._keys.conversation(conversation_id), "view")

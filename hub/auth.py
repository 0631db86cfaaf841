"""Staff accounts, login sessions and roles.

Sessions live in Redis (token → user), so any hub worker serves any request.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

import bcrypt
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import User
from core.redis_client import Keys

SESSION_COOKIE = "zwkf_session"
ROLES = ("agent", "supervisor", "kb_editor", "inspector", "admin")
ROLE_NAMES = {
    "agent": "坐席",
    "supervisor": "班长",
    "kb_editor": "知识库编辑",
    "inspector": "质检员",
    "admin": "管理员",
}


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    role: str

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


class Accounts:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], redis: aioredis.Redis, keys: Keys, hours: int
    ) -> None:
        self._sessions = sessions
        self._redis = redis
        self._keys = keys
        self._ttl = hours * 3600

    async def create(self, username: str, password: str, display_name: str, role: str) -> StaffUser:
        if role not in ROLES:
            raise ValueError(f"unknown role {role}")
        async with self._sessions() as session, session.begin():
            user = User(username=username, display_name=display_name, password_hash=hash_password(password), role=role)
            session.add(user)
            await session.flush()
            return StaffUser(user.id, user.username, user.display_name, user.role)

    async def ensure(self, username: str, password: str, display_name: str, role: str) -> None:
        async with self._sessions() as session:
            found = await session.execute(select(User.id).where(User.username == username))
            if found.scalar_one_or_none() is not None:
                return
        await self.create(username, password, display_name, role)

    async def login(self, username: str, password: str) -> tuple[StaffUser, str] | None:
        async with self._sessions() as session:
            found = await session.execute(select(User).where(User.username == username))
            user = found.scalar_one_or_none()
        if user is None or not bcrypt.checkpw(password.encode(), user.password_hash.encode()):
            return None
        staff = StaffUser(user.id, user.username, user.display_name, user.role)
        token = secrets.token_urlsafe(32)
        await self._redis.set(self._keys.session(token), json.dumps(asdict(staff)), ex=self._ttl)
        return staff, token

    async def from_token(self, token: str | None) -> StaffUser | None:
        if not token:
            return None
        raw = await self._redis.get(self._keys.session(token))
        return None if raw is None else StaffUser(**json.loads(raw))

    async def display_name(self, user_id: int) -> str | None:
        async with self._sessions() as session:
            user = await session.get(User, user_id)
            return None if user is None else user.display_name

    async def logout(self, token: str | None) -> None:
        if token:
            await self._redis.delete(self._keys.session(token))

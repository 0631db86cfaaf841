"""Staff accounts, login sessions, roles, password rules and login throttling.

Sessions live in Redis (token → user), so any hub worker serves any request and ending a session
(logout, password change, an admin disabling the account) takes effect on every worker at once:

  session:<token>            JSON of the user + when it was issued + its stage; expires after the
                             idle timeout, renewed on each use; refused past the absolute timeout
  user_sessions:<user id>    set of that user's tokens (to end them all)
  login:fail:<username>      failed logins in the lock-out window; at the limit → login:lock:<username>
  login:lock:<username>      the lock-out (expires, or an admin lifts it)
  login:ip:<ip>              failed logins from one address in its window

A session in stage "change" (an initial or reset password) only opens the password-change page:
`from_token` does not accept it, so every staff page and API refuses it until the password changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import string
import time
import unicodedata
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import bcrypt
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import audit
from core.errors import Refusal
from core.models import User, utcnow
from core.redis_client import Keys

log = logging.getLogger(__name__)
SESSION_COOKIE = "zwkf_session"
ROLES = ("agent", "supervisor", "kb_editor", "inspector", "admin")
ROLE_NAMES = {
    "agent": "坐席",
    "supervisor": "班长",
    "kb_editor": "知识库编辑",
    "inspector": "质检员",
    "admin": "管理员",
}
BCRYPT_MAX_BYTES = 72  # bcrypt ignores (bcrypt 5 refuses) anything past 72 bytes
MAX_PASSWORD_INPUT = 1024  # longer input is refused before any hashing
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common_passwords.txt"
BAD_CREDENTIALS = "用户名或密码错误。"


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    role: str

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


@dataclass(frozen=True)
class Policy:
    """What config.yml's `accounts:` section says (defaults in brackets there)."""

    min_length: int = 10
    idle_seconds: int = 30 * 60
    absolute_seconds: int = 12 * 3600
    max_failures: int = 5
    lockout_seconds: int = 15 * 60
    ip_max_failures: int = 30
    ip_window_seconds: int = 15 * 60

    @classmethod
    def from_settings(cls, get: Any) -> Policy:
        return cls(
            min_length=int(get("accounts.password_min_length", 10)),
            idle_seconds=int(get("accounts.session_idle_minutes", 30)) * 60,
            absolute_seconds=int(get("hub.session_hours", 12)) * 3600,
            max_failures=int(get("accounts.login_max_failures", 5)),
            lockout_seconds=int(get("accounts.lockout_minutes", 15)) * 60,
            ip_max_failures=int(get("accounts.ip_max_failures", 30)),
            ip_window_seconds=int(get("accounts.ip_window_minutes", 15)) * 60,
        )


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str, username: str, min_length: int = 10) -> str | None:
    """Why `password` may not be a staff password (Chinese, for the page), or None when it may."""
    if len(password) < min_length:
        return f"密码至少需要 {min_length} 个字符。"
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        return f"密码不能超过 {BCRYPT_MAX_BYTES} 字节（约 {BCRYPT_MAX_BYTES} 个英文字符或 24 个汉字）。"
    folded = unicodedata.normalize("NFKC", password).lower()
    name = username.lower()
    if name and (folded == name or len(name) >= 3 and len(folded.replace(name, "")) <= 4):
        return "密码不能与用户名相同或只是在用户名前后加几个字符。"
    if folded in common_passwords() or len(set(folded)) < 3:
        return "这个密码太常见，容易被猜到，请换一个。"
    return None


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def initial_password() -> str:
    """A random initial / reset password an admin hands over once (no look-alike characters)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(12))
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate


# Checked against when the username is unknown (or the input cannot match), so that a wrong
# username costs as long as a wrong password: no telling which accounts exist by timing.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16)).encode()


def _check(password: str, stored: bytes | None) -> bool:
    candidate = password.encode()
    if stored is None or len(candidate) > BCRYPT_MAX_BYTES:
        bcrypt.checkpw(candidate[:BCRYPT_MAX_BYTES], _DUMMY_HASH)
        return False
    return bcrypt.checkpw(candidate, stored)


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser
    token: str
    must_change: bool


class Accounts:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        keys: Keys,
        hours: int = 12,
        policy: Policy | None = None,
    ) -> None:
        self._sessions = sessions
        self._redis = redis
        self._keys = keys
        self.policy = policy or Policy(absolute_seconds=hours * 3600)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    # ------------------------------------------------------------------ keys
    def _k(self, suffix: str) -> str:
        return f"{self._keys.prefix}{suffix}"

    def _user_sessions(self, user_id: int) -> str:
        return self._k(f"user_sessions:{user_id}")

    @staticmethod
    def _name_key(username: str) -> str:
        return username.strip().lower()[:64]

    # ------------------------------------------------------------------ accounts
    async def create(
        self,
        username: str,
        password: str,
        display_name: str,
        role: str,
        *,
        must_change: bool = False,
        skill_groups: list[str] | None = None,
    ) -> StaffUser:
        if role not in ROLES:
            raise Refusal(400, f"未知的角色：{role}", "bad_role")
        async with self._sessions() as session, session.begin():
            taken = await session.execute(select(User.id).where(func.lower(User.username) == username.lower()))
            if taken.scalar_one_or_none() is not None:
                raise Refusal(409, f"用户名 {username} 已存在。", "username_taken")
            user = User(
                username=username, display_name=display_name, password_hash=await _hash(password), role=role,
                must_change_password=must_change, skill_groups=list(skill_groups or []), active=True,
            )
            session.add(user)
            await session.flush()
            return StaffUser(user.id, user.username, user.display_name, user.role)

    async def count(self) -> int:
        async with self._sessions() as session:
            return int((await session.execute(select(func.count(User.id)))).scalar_one())

    async def get(self, user_id: int) -> User | None:
        async with self._sessions() as session:
            return await session.get(User, user_id)

    async def display_name(self, user_id: int) -> str | None:
        user = await self.get(user_id)
        return None if user is None else user.display_name

    # ------------------------------------------------------------------ login
    async def login(self, username: str, password: str, ip: str = "") -> LoginResult:
        """A session for correct credentials; a Refusal otherwise (401 wrong, 403 disabled, 429 locked or
        throttled). Every outcome is in the audit log."""
        name = self._name_key(username)
        ip_key = self._k(f"login:ip:{ip}")
        ip_failures = int(await self._redis.get(ip_key) or 0)
        if ip_failures >= self.policy.ip_max_failures:
            await audit.write(self._sessions, name, "login_failed", f"user:{name}", ip, {"reason": "ip_throttled"})
            minutes = max(1, -(-int(await self._redis.ttl(ip_key)) // 60))
            raise Refusal(429, f"登录失败次数过多，请 {minutes} 分钟后再试。", "ip_throttled")
        lock_ttl = int(await self._redis.ttl(self._k(f"login:lock:{name}")))
        if lock_ttl > 0 or lock_ttl == -1:
            await audit.write(self._sessions, name, "login_failed", f"user:{name}", ip, {"reason": "locked"})
            minutes = max(1, -(-lock_ttl // 60)) if lock_ttl > 0 else self.policy.lockout_seconds // 60
            raise Refusal(429, f"该账号因多次密码错误已被锁定，请 {minutes} 分钟后再试，或联系管理员解锁。", "locked")
        async with self._sessions() as session:
            found = await session.execute(select(User).where(func.lower(User.username) == name))
            user = found.scalar_one_or_none()
        stored = None if user is None or len(password) > MAX_PASSWORD_INPUT else user.password_hash.encode()
        if not await asyncio.to_thread(_check, password[:MAX_PASSWORD_INPUT], stored):
            await self._failed(name, ip, user)
            raise Refusal(401, BAD_CREDENTIALS, "bad_credentials")
        assert user is not None
        if not user.active:
            await audit.write(self._sessions, user, "login_failed", f"user:{user.id}", ip, {"reason": "disabled"})
            raise Refusal(403, "该账号已停用，请联系管理员。", "disabled")
        await self._redis.delete(self._k(f"login:fail:{name}"))
        staff = StaffUser(user.id, user.username, user.display_name, user.role)
        token = await self._open_session(staff, "change" if user.must_change_password else "full")
        await audit.write(self._sessions, staff, "login", f"user:{user.id}", ip, {})
        return LoginResult(staff, token, bool(user.must_change_password))

    async def _failed(self, name: str, ip: str, user: User | None) -> None:
        fail_key = self._k(f"login:fail:{name}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(fail_key)
            pipe.expire(fail_key, self.policy.lockout_seconds, nx=True)
            pipe.incr(self._k(f"login:ip:{ip}"))
            pipe.expire(self._k(f"login:ip:{ip}"), self.policy.ip_window_seconds, nx=True)
            failures, *_ = await pipe.execute()
        log.warning("failed login for %r from %s (%d in a row)", name, ip or "?", int(failures))
        actor: Any = user if user is not None else name
        target = f"user:{user.id}" if user is not None else f"user:{name}"
        detail = {"reason": "bad_password", "count": int(failures)}
        await audit.write(self._sessions, actor, "login_failed", target, ip, detail)
        if int(failures) >= self.policy.max_failures:
            await self._redis.set(self._k(f"login:lock:{name}"), str(int(time.time())), ex=self.policy.lockout_seconds)
            await self._redis.delete(fail_key)
            await audit.write(self._sessions, actor, "login_locked", target, ip, {"failures": failures})

    async def locked(self, usernames: list[str]) -> dict[str, int]:
        """Seconds left of each locked-out account among `usernames`."""
        if not usernames:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for username in usernames:
                pipe.ttl(self._k(f"login:lock:{self._name_key(username)}"))
            ttls = await pipe.execute()
        return {u: int(t) for u, t in zip(usernames, ttls, strict=True) if int(t) > 0 or int(t) == -1}

    async def unlock(self, username: str) -> bool:
        name = self._name_key(username)
        removed = await self._redis.delete(self._k(f"login:lock:{name}"), self._k(f"login:fail:{name}"))
        return bool(removed)

    # ------------------------------------------------------------------ sessions
    async def _open_session(self, user: StaffUser, stage: str) -> str:
        token = secrets.token_urlsafe(32)
        payload = {**asdict(user), "issued": time.time(), "stage": stage}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.session(token), json.dumps(payload), ex=self.policy.idle_seconds)
            pipe.sadd(self._user_sessions(user.id), token)
            pipe.expire(self._user_sessions(user.id), self.policy.absolute_seconds)
            await pipe.execute()
        return token

    async def _payload(self, token: str | None) -> dict[str, Any] | None:
        if not token or len(token) > 128:
            return None
        raw = await self._redis.getex(self._keys.session(token), ex=self.policy.idle_seconds)
        if raw is None:
            return None
        payload: dict[str, Any] = json.loads(raw)
        if time.time() - float(payload.get("issued", 0)) > self.policy.absolute_seconds:
            await self._redis.delete(self._keys.session(token))
            return None
        return payload

    async def from_token(self, token: str | None) -> StaffUser | None:
        """The staff member of a full session (renewing its idle timeout); None for no, an expired or
        a change-password-first session."""
        payload = await self._payload(token)
        if payload is None or payload.get("stage", "full") != "full":
            return None
        return StaffUser(payload["id"], payload["username"], payload["display_name"], payload["role"])

    async def pending_user(self, token: str | None) -> tuple[StaffUser, bool] | None:
        """The staff member of any session, full or change-password-first: (user, must change)."""
        payload = await self._payload(token)
        if payload is None:
            return None
        user = StaffUser(payload["id"], payload["username"], payload["display_name"], payload["role"])
        return user, payload.get("stage", "full") != "full"

    async def logout(self, token: str | None) -> StaffUser | None:
        """End this session (and, as a staff member expects of 退出, every other one of theirs)."""
        found = await self.pending_user(token)
        if found is None:
            if token and len(token) <= 128:
                await self._redis.delete(self._keys.session(token))
            return None
        await self.end_sessions(found[0].id)
        return found[0]

    async def end_sessions(self, user_id: int) -> int:
        """End every session of a user on every worker (sessions are only in Redis)."""
        key = self._user_sessions(user_id)
        tokens = list(await self._redis.smembers(key))
        await self._redis.delete(key, *[self._keys.session(t) for t in tokens])
        return len(tokens)

    # ------------------------------------------------------------------ passwords
    async def change_password(self, user_id: int, current: str, new: str, ip: str = "") -> str:
        """Check the current password and the rules, store the new one, end every session of the user,
        and open a new full session (its token is returned)."""
        async with self._sessions() as session, session.begin():
            user = await session.get(User, user_id)
            if user is None or not user.active:
                raise Refusal(401, "请先登录。", "login_required")
            if len(current) > MAX_PASSWORD_INPUT or not await asyncio.to_thread(
                _check, current, user.password_hash.encode()
            ):
                raise Refusal(400, "当前密码不正确。", "bad_current_password")
            problem = password_problem(new, user.username, self.policy.min_length)
            if problem is None and new == current:
                problem = "新密码不能与当前密码相同。"
            if problem:
                raise Refusal(400, problem, "weak_password")
            user.password_hash = await _hash(new)
            user.must_change_password = False
            user.password_changed_at = user.updated_at = utcnow()
            audit.record(session, StaffUser(user.id, user.username, user.display_name, user.role),
                         "password_change", f"user:{user.id}", ip)
            staff = StaffUser(user.id, user.username, user.display_name, user.role)
        await self.end_sessions(user_id)
        return await self._open_session(staff, "full")


async def _hash(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)

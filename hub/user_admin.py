"""用户管理: what an administrator does to staff accounts, each change an audit row.

Create (with a one-time initial password to change at first login), rename, set the role and skill
groups, disable and re-enable, reset the password, lift a lock-out. Disabling, a role change and a
password reset end every session of that user at once (sessions are in Redis, so on every worker).
An administrator cannot disable or demote themself, so a bureau is never left without one.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from core import audit
from core.errors import Refusal
from core.models import User, utcnow
from hub.auth import ROLE_NAMES, ROLES, Accounts, StaffUser, hash_password, initial_password

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")


def user_json(user: User, locked_seconds: int | None = None) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "role_name": ROLE_NAMES.get(user.role, user.role),
        "skill_groups": list(user.skill_groups or []),
        "active": bool(user.active),
        "must_change_password": bool(user.must_change_password),
        "locked_seconds": locked_seconds,
        "created_at": user.created_at.isoformat() if user.created_at else None,
    }


class UserAdmin:
    def __init__(self, accounts: Accounts, groups: list[str]) -> None:
        self.accounts = accounts
        self.groups = groups
        self._sessions = accounts.sessions

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _display_name(value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > 32:
            raise Refusal(400, "姓名不能为空，最多 32 个字。", "bad_display_name")
        return value.strip()

    @staticmethod
    def _role(value: Any) -> str:
        if value not in ROLES:
            raise Refusal(400, "角色只能是：" + "、".join(ROLE_NAMES.values()) + "。", "bad_role")
        return str(value)

    def _groups(self, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
            raise Refusal(400, "技能组格式错误。", "bad_groups")
        unknown = [g for g in value if g not in self.groups]
        if unknown:
            raise Refusal(400, f"没有这个技能组：{'、'.join(unknown)}。", "bad_groups")
        return list(dict.fromkeys(value))

    # ------------------------------------------------------------------ reads
    async def list(self) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            users = list((await session.execute(select(User).order_by(User.id))).scalars())
        locks = await self.accounts.locked([u.username for u in users])
        return [user_json(u, locks.get(u.username)) for u in users]

    # ------------------------------------------------------------------ changes
    async def create(self, admin: StaffUser, body: dict[str, Any], ip: str) -> tuple[dict[str, Any], str]:
        username = body.get("username")
        if not isinstance(username, str) or not USERNAME.match(username.strip()):
            raise Refusal(400, "用户名为 2-32 位字母、数字、下划线、点或短横线，以字母或数字开头。", "bad_username")
        username = username.strip()
        display_name = self._display_name(body.get("display_name"))
        role = self._role(body.get("role"))
        groups = self._groups(body.get("skill_groups"))
        password = initial_password()
        created = await self.accounts.create(
            username, password, display_name, role, must_change=True, skill_groups=groups
        )
        detail = {"username": username, "display_name": display_name, "role": role, "skill_groups": groups}
        await audit.write(self._sessions, admin, "user_create", f"user:{created.id}", ip, detail)
        user = await self.accounts.get(created.id)
        assert user is not None
        return user_json(user), password

    async def update(self, admin: StaffUser, user_id: int, body: dict[str, Any], ip: str) -> dict[str, Any]:
        """Change display name, role, skill groups and/or active; the audit row lists old → new."""
        end_sessions = False
        async with self._sessions() as session, session.begin():
            user = await session.get(User, user_id)
            if user is None:
                raise Refusal(404, "没有这个用户。", "no_user")
            changes: dict[str, list[Any]] = {}
            if "display_name" in body:
                name = self._display_name(body["display_name"])
                if name != user.display_name:
                    changes["display_name"] = [user.display_name, name]
                    user.display_name = name
            if "role" in body:
                role = self._role(body["role"])
                if role != user.role:
                    if user.id == admin.id:
                        raise Refusal(400, "不能修改自己的角色。", "self_demote")
                    changes["role"] = [user.role, role]
                    user.role = role
                    end_sessions = True
            if "skill_groups" in body:
                groups = self._groups(body["skill_groups"])
                if groups != list(user.skill_groups or []):
                    changes["skill_groups"] = [list(user.skill_groups or []), groups]
                    user.skill_groups = groups
            action = "user_update"
            if "active" in body:
                if not isinstance(body["active"], bool):
                    raise Refusal(400, "启用状态格式错误。", "bad_active")
                if body["active"] != user.active:
                    if user.id == admin.id:
                        raise Refusal(400, "不能停用自己的账号。", "self_disable")
                    changes["active"] = [user.active, body["active"]]
                    user.active = body["active"]
                    action = "user_enable" if user.active else "user_disable"
                    end_sessions = end_sessions or not user.active
            if changes:
                user.updated_at = utcnow()
                if "display_name" in changes:
                    end_sessions = True  # the name travels in the session
                audit.record(session, admin, action, f"user:{user.id}", ip, {"username": user.username, **changes})
        if end_sessions:
            await self.accounts.end_sessions(user_id)
        return user_json(user, (await self.accounts.locked([user.username])).get(user.username))

    async def reset_password(self, admin: StaffUser, user_id: int, ip: str) -> str:
        password = initial_password()
        async with self._sessions() as session, session.begin():
            user = await session.get(User, user_id)
            if user is None:
                raise Refusal(404, "没有这个用户。", "no_user")
            user.password_hash = hash_password(password)
            user.must_change_password = True
            user.updated_at = utcnow()
            audit.record(session, admin, "password_reset", f"user:{user.id}", ip, {"username": user.username})
            username = user.username
        await self.accounts.end_sessions(user_id)
        await self.accounts.unlock(username)
        return password

    async def unlock(self, admin: StaffUser, user_id: int, ip: str) -> None:
        user = await self.accounts.get(user_id)
        if user is None:
            raise Refusal(404, "没有这个用户。", "no_user")
        await self.accounts.unlock(user.username)
        await audit.write(self._sessions, admin, "unlock", f"user:{user.id}", ip, {"username": user.username})

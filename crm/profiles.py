"""Citizen profiles and the identities that lead to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.models import AuditLog, Citizen, CitizenIdentity


@dataclass(frozen=True)
class CitizenView:
    id: int
    name: str | None
    phone: str | None
    id_number: str | None
    tags: list[str]
    identities: list[tuple[str, str]]


def mask(value: str | None, keep_tail: int = 4) -> str | None:
    """`***` and the last characters, as agents see phone and ID numbers they do not need."""
    if not value:
        return value
    return "***" + value[-keep_tail:] if len(value) > keep_tail else "***"


class CitizenDirectory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def resolve(self, kind: str, value: str) -> int:
        """The citizen behind an identity, creating an empty profile the first time it is seen."""
        for _ in range(3):
            async with self._sessions() as session:
                found = await session.execute(
                    select(CitizenIdentity.citizen_id).where(
                        CitizenIdentity.kind == kind, CitizenIdentity.value == value
                    )
                )
                citizen_id = found.scalar_one_or_none()
                if citizen_id is not None:
                    return citizen_id
            try:
                async with self._sessions() as session, session.begin():
                    citizen = Citizen()
                    session.add(citizen)
                    await session.flush()
                    session.add(CitizenIdentity(citizen_id=citizen.id, kind=kind, value=value))
                return citizen.id
            except IntegrityError:
                continue  # another worker created it at the same moment: read theirs
        raise RuntimeError(f"could not resolve identity {kind}")

    async def link(self, citizen_id: int, kind: str, value: str) -> bool:
        """Attach another identity (a WeChat unionid, a phone number) to a profile.
        Returns False when that identity already belongs to someone (merging is a staff decision)."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(CitizenIdentity(citizen_id=citizen_id, kind=kind, value=value))
        except IntegrityError:
            return False
        return True

    async def get(self, citizen_id: int) -> CitizenView | None:
        async with self._sessions() as session:
            citizen = await session.get(Citizen, citizen_id)
            if citizen is None:
                return None
            identities = await session.execute(
                select(CitizenIdentity.kind, CitizenIdentity.value).where(CitizenIdentity.citizen_id == citizen_id)
            )
            return CitizenView(
                citizen.id,
                citizen.name,
                citizen.phone,
                citizen.id_number,
                list(citizen.tags or []),
                [(kind, value) for kind, value in identities],
            )

    async def update(self, citizen_id: int, **fields: Any) -> list[str]:
        """Set profile fields (already checked: crm.validation.clean_profile); returns what changed."""
        allowed = {"name", "phone", "id_number", "tags", "notes"}
        changed = []
        async with self._sessions() as session, session.begin():
            citizen = await session.get(Citizen, citizen_id)
            if citizen is None:
                raise KeyError(citizen_id)
            for key, value in fields.items():
                if key in allowed and value is not None and getattr(citizen, key) != value:
                    setattr(citizen, key, value)
                    changed.append(key)
        return changed

    async def audit(self, user_id: int | None, action: str, target: str, data: dict | None = None) -> None:
        async with self._sessions() as session, session.begin():
            session.add(AuditLog(user_id=user_id, action=action, target=target, data=data or {}))

"""Citizen profiles and the identities that lead to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import LIKE_ESCAPE, contains_pattern
from core.masking import UNMASKED_ROLES, mask
from core.models import AuditLog, Citizen, CitizenIdentity, utcnow

EDITABLE = frozenset({"name", "phone", "id_number", "address", "tags", "notes", "vip", "flagged"})


@dataclass(frozen=True)
class CitizenView:
    id: int
    name: str | None
    phone: str | None
    id_number: str | None
    tags: list[str]
    identities: list[tuple[str, str]]
    address: str = ""
    notes: str = ""
    vip: bool = False
    flagged: bool = False
    merged_into: int | None = None

    def to_json(self, role: str) -> dict[str, Any]:
        """The profile as a member of staff with this role may see it (phone and ID masked unless allowed)."""
        full = role in UNMASKED_ROLES
        return {
            "id": self.id,
            "name": self.name,
            "phone": self.phone if full else mask(self.phone),
            "id_number": self.id_number if full else mask(self.id_number),
            "masked": not full,
            "address": self.address,
            "tags": list(self.tags),
            "notes": self.notes,
            "vip": self.vip,
            "flagged": self.flagged,
            "merged_into": self.merged_into,
            "identities": [
                {"kind": kind, "value": value if full or kind != "phone" else mask(value)}
                for kind, value in self.identities
            ],
        }


class CitizenDirectory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

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
            return view_of(citizen, [(kind, value) for kind, value in identities])

    async def search(self, query: str, limit: int = 20) -> list[CitizenView]:
        """Profiles (not merged away) whose name, phone, ID number or id matches, for the merge search."""
        query = query.strip()[:64]
        if not query:
            return []
        like = contains_pattern(query)
        conditions = [
            Citizen.name.like(like, escape=LIKE_ESCAPE), Citizen.phone.like(like, escape=LIKE_ESCAPE),
            Citizen.id_number == query.upper(),
        ]
        if query.isdigit() and len(query) < 10:
            conditions.append(Citizen.id == int(query))
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Citizen).where(Citizen.merged_into.is_(None), or_(*conditions)).order_by(Citizen.id)
                    .limit(limit)
                )
            ).scalars().all()
        return [view_of(row, []) for row in rows]

    async def update(self, citizen_id: int, **fields: Any) -> list[str]:
        """Set profile fields (already checked: crm.validation.clean_profile); returns what changed."""
        changed = []
        async with self._sessions() as session, session.begin():
            citizen = await session.get(Citizen, citizen_id)
            if citizen is None:
                raise KeyError(citizen_id)
            if citizen.merged_into is not None:
                raise KeyError(citizen_id)  # merged away: edit the surviving profile
            for key, value in fields.items():
                if value is None and key not in ("phone", "id_number"):
                    continue
                if key in EDITABLE and getattr(citizen, key) != value:
                    setattr(citizen, key, value)
                    changed.append(key)
            if changed:
                citizen.updated_at = utcnow()
        return changed

    async def audit(self, user_id: int | None, action: str, target: str, data: dict | None = None) -> None:
        async with self._sessions() as session, session.begin():
            session.add(AuditLog(user_id=user_id, action=action, target=target, data=data or {}))


def view_of(citizen: Citizen, identities: list[tuple[str, str]]) -> CitizenView:
    return CitizenView(
        citizen.id, citizen.name, citizen.phone, citizen.id_number, list(citizen.tags or []), identities,
        citizen.address or "", citizen.notes or "", bool(citizen.vip), bool(citizen.flagged), citizen.merged_into,
    )

"""Merging two profiles found to be the same person (合并客户).

The surviving profile takes every identity, conversation, ticket and CSAT rating of the
other; its empty fields are filled from the other's, tags are joined and notes appended.
The merged-away profile is kept as a tombstone (`merged_into`), so nothing is deleted and the
audit log (append-only, never rewritten) still finds its rows: `audit_targets` gives every
target that belongs to a profile's history. Agents propose a merge; supervisors carry it out
(or refuse a proposal); each step is an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import Refusal
from core.models import AuditLog, Citizen, CitizenIdentity, Conversation, CsatRating, Ticket, TicketEvent, utcnow

MAX_REASON = 200


class MergeError(Refusal):
    """A merge refused (unknown, already merged, the same profile …)."""


@dataclass(frozen=True)
class MergeResult:
    keep_id: int
    merged_id: int
    moved: dict[str, int]
    filled: list[str]
    open_conversation_ids: list[str] = field(default_factory=list)  # their live state names the old profile

    def to_json(self) -> dict[str, Any]:
        return {"keep_id": self.keep_id, "merged_id": self.merged_id, "moved": self.moved, "filled": self.filled}


def check_pair(data: Any) -> tuple[int, int, str]:
    """(keep_id, merge_id, reason) from a request body; MergeError(400) on a bad one."""
    if not isinstance(data, dict):
        raise MergeError(400, "请求内容不完整。", "bad_json")
    keep, other = data.get("keep_id"), data.get("merge_id")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (keep, other)):
        raise MergeError(400, "请选择要保留的客户和要合并的客户。", "bad_field")
    if keep == other:
        raise MergeError(400, "不能把客户与自己合并：请选择另一位客户。", "same_citizen")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason.strip()) > MAX_REASON:
        raise MergeError(400, f"合并原因不超过 {MAX_REASON} 个字。", "bad_field")
    return int(keep), int(other), reason.strip()


async def _pair(session: AsyncSession, keep_id: int, merge_id: int, *, lock: bool) -> tuple[Citizen, Citizen]:
    query = select(Citizen).where(Citizen.id.in_([keep_id, merge_id])).order_by(Citizen.id)
    if lock:
        query = query.with_for_update()
    rows = {c.id: c for c in (await session.execute(query)).scalars()}
    for citizen_id in (keep_id, merge_id):
        if citizen_id not in rows:
            raise MergeError(404, f"没有找到客户 #{citizen_id}。", "not_found")
        if rows[citizen_id].merged_into is not None:
            target = rows[citizen_id].merged_into
            raise MergeError(409, f"客户 #{citizen_id} 已合并到客户 #{target}，请选择保留的客户。", "already_merged")
    return rows[keep_id], rows[merge_id]


class CitizenMerger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def merge(self, keep_id: int, merge_id: int, *, user_id: int | None, reason: str = "") -> MergeResult:
        """Move everything of `merge_id` to `keep_id` in one transaction; MergeError (4xx) changes nothing."""
        if keep_id == merge_id:
            raise MergeError(400, "不能把客户与自己合并：请选择另一位客户。", "same_citizen")
        async with self._sessions() as session, session.begin():
            keep, other = await _pair(session, keep_id, merge_id, lock=True)
            moved: dict[str, int] = {}
            open_ids = list((await session.execute(
                select(Conversation.id).where(Conversation.citizen_id == merge_id, Conversation.status == "open")
            )).scalars())
            for name, model in (
                ("identities", CitizenIdentity), ("conversations", Conversation), ("tickets", Ticket),
                ("csat", CsatRating),
            ):
                result = await session.execute(
                    update(model).where(model.citizen_id == merge_id).values(citizen_id=keep_id)
                    .execution_options(synchronize_session=False)
                )
                moved[name] = int(result.rowcount or 0)
            # tombstones that pointed at the merged profile now point at the survivor
            await session.execute(
                update(Citizen).where(Citizen.merged_into == merge_id).values(merged_into=keep_id)
                .execution_options(synchronize_session=False)
            )
            ticket_ids = (await session.execute(select(Ticket.id).where(Ticket.citizen_id == keep_id))).scalars()
            now = utcnow()
            for ticket_id in ticket_ids:
                session.add(TicketEvent(ticket_id=ticket_id, user_id=user_id, kind="merged", created_at=now,
                                        data={"from_citizen": merge_id, "to_citizen": keep_id}))
            filled = _fill(keep, other)
            keep.updated_at = now
            other.merged_into = keep_id
            other.updated_at = now
            data = {"kept": keep_id, "merged": merge_id, "moved": moved, "filled": filled, "reason": reason}
            session.add(AuditLog(user_id=user_id, action="merge_citizen", target=f"citizen:{keep_id}", data=data))
            session.add(AuditLog(user_id=user_id, action="merged_into", target=f"citizen:{merge_id}", data=data))
        return MergeResult(keep_id, merge_id, moved, filled, open_ids)

    async def propose(self, keep_id: int, merge_id: int, *, user_id: int | None, reason: str = "") -> None:
        """An agent's proposal: an audit row a supervisor later confirms or refuses."""
        async with self._sessions() as session, session.begin():
            await _pair(session, keep_id, merge_id, lock=False)
            session.add(AuditLog(user_id=user_id, action="propose_merge", target=f"citizen:{keep_id}",
                                 data={"kept": keep_id, "merged": merge_id, "reason": reason}))

    async def refuse(self, proposal_id: int, *, user_id: int | None) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(AuditLog, proposal_id)
            if row is None or row.action != "propose_merge":
                raise MergeError(404, "没有找到该合并申请。", "not_found")
            session.add(AuditLog(user_id=user_id, action="refuse_merge", target=row.target,
                                 data={"proposal": proposal_id, **(row.data or {})}))

    async def proposals(self) -> list[dict[str, Any]]:
        """Open proposals: neither refused nor already carried out (both profiles still stand)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(AuditLog).where(AuditLog.action == "propose_merge").order_by(AuditLog.id.desc()).limit(200)
                )
            ).scalars().all()
            refused = {
                int((r.data or {}).get("proposal", 0))
                for r in (await session.execute(select(AuditLog).where(AuditLog.action == "refuse_merge"))).scalars()
            }
            ids = {int(r.data[k]) for r in rows for k in ("kept", "merged")}
            citizens = {
                c.id: c for c in (await session.execute(select(Citizen).where(Citizen.id.in_(ids)))).scalars()
            } if ids else {}
        out = []
        for row in rows:
            kept, merged = citizens.get(int(row.data["kept"])), citizens.get(int(row.data["merged"]))
            if row.id in refused or kept is None or merged is None or kept.merged_into or merged.merged_into:
                continue
            out.append({
                "id": row.id, "keep_id": kept.id, "keep_name": kept.name, "merge_id": merged.id,
                "merge_name": merged.name, "reason": row.data.get("reason", ""), "user_id": row.user_id,
                "created_at": row.created_at.isoformat(),
            })
        return out

    async def proposal(self, proposal_id: int) -> tuple[int, int, str]:
        for item in await self.proposals():
            if item["id"] == proposal_id:
                return item["keep_id"], item["merge_id"], item["reason"]
        raise MergeError(404, "没有找到该合并申请，或已处理。", "not_found")

    async def history_ids(self, citizen_id: int) -> list[int]:
        """The profile and every profile ever merged into it."""
        async with self._sessions() as session:
            merged = (await session.execute(select(Citizen.id).where(Citizen.merged_into == citizen_id))).scalars()
            return [citizen_id, *merged]

    async def audit_trail(self, citizen_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """Every audit row about this profile, including the rows of profiles merged into it."""
        targets = [f"citizen:{i}" for i in await self.history_ids(citizen_id)]
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(AuditLog).where(AuditLog.target.in_(targets)).order_by(AuditLog.id.desc()).limit(limit)
                )
            ).scalars().all()
        return [
            {"id": r.id, "user_id": r.user_id, "action": r.action, "target": r.target, "data": r.data or {},
             "created_at": r.created_at.isoformat()}
            for r in rows
        ]


def _fill(keep: Citizen, other: Citizen) -> list[str]:
    """Complete the survivor from the other profile; the survivor's own values win."""
    filled = []
    for name in ("name", "phone", "id_number", "address"):
        if not getattr(keep, name) and getattr(other, name):
            setattr(keep, name, getattr(other, name))
            filled.append(name)
    tags = sorted(set(keep.tags or []) | set(other.tags or []))
    if tags != sorted(keep.tags or []):
        keep.tags = tags
        filled.append("tags")
    if other.notes and other.notes not in (keep.notes or ""):
        keep.notes = ((keep.notes or "") + ("\n" if keep.notes else "") + other.notes)[:2000]
        filled.append("notes")
    for flag in ("vip", "flagged"):
        if getattr(other, flag) and not getattr(keep, flag):
            setattr(keep, flag, True)
            filled.append(flag)
    return filled

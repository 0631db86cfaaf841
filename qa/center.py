"""The QA center's work over stored items: what an inspector, a supervisor or an agent sees of an
item, inspections, re-review (复核) appeals and decisions. Every step is one transaction with its
audit row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import Refusal
from core.models import Message, User
from core.models.base import utcnow
from core.models.qa import QaAppeal, QaInspection, QaItem, QaTask
from qa.audit import audit
from qa.masking import mask_text
from qa.sheets import auto_scores, check_scores
from qa.versions import Versions

INSPECTORS = ("inspector", "supervisor")  # an admin holds every role
UNMASKED = frozenset({"supervisor", "admin"})
MAX_COMMENT = 500
MAX_REASON = 500


class Viewer(Protocol):
    id: int
    role: str
    display_name: str

    def may(self, *roles: str) -> bool: ...


class QaError(Refusal):
    REASONS = {
        "not_found": (404, "没有这条质检记录。"),
        "forbidden": (403, "您无权查看或处理这条质检记录。"),
        "not_inspectable": (409, "这条记录正在复核或已有最终结果，不能再质检。"),
        "bad_comment": (400, f"评语需要对应对话中的一条消息，且不超过 {MAX_COMMENT} 字。"),
        "not_inspected": (409, "这条记录还没有人工质检结果，不能申请复核。"),
        "appeal_exists": (409, "这条记录已经申请过复核。"),
        "appeal_late": (409, "已超过复核申请期限。"),
        "bad_reason": (400, f"请填写复核理由（5 到 {MAX_REASON} 字）。"),
        "appeal_closed": (409, "这条复核申请已经处理过了。"),
        "own_inspection": (403, "复核需要由质检员以外的班长处理。"),
        "bad_decision": (400, "请选择维持原评分或修改评分。"),
    }

    def __init__(self, code: str) -> None:
        status, reason = self.REASONS[code]
        super().__init__(status, reason, code)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class QaDesk:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], versions: Versions, appeal_days: int = 7) -> None:
        self._sessions = sessions
        self._versions = versions
        self.appeal_days = appeal_days

    # -- reading --------------------------------------------------------------------------------
    async def _item(self, session: AsyncSession, item_id: int, viewer: Viewer) -> QaItem:
        item = await session.get(QaItem, item_id)
        if item is None:
            raise QaError("not_found")
        if not viewer.may(*INSPECTORS) and viewer.id != item.agent_id:
            raise QaError("forbidden")
        return item

    async def _names(self, session: AsyncSession, ids: set[int]) -> dict[int, str]:
        ids = {i for i in ids if i is not None}
        if not ids:
            return {}
        rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
        return {int(i): str(name) for i, name in rows}

    async def view(self, item_id: int, viewer: Viewer) -> dict[str, Any]:
        """The item as the page shows it: the transcript (numbers masked unless the viewer may see
        them) with each line's rule hits, the sheet of the item's version, every score and the appeal."""
        async with self._sessions() as session:
            item = await self._item(session, item_id, viewer)
            masked = viewer.role not in UNMASKED
            rows = (await session.execute(
                select(Message).where(Message.conversation_id == item.conversation_id).order_by(Message.id)
            )).scalars()
            inspections = list((await session.execute(
                select(QaInspection).where(QaInspection.item_id == item.id).order_by(QaInspection.id)
            )).scalars())
            appeal = (await session.execute(select(QaAppeal).where(QaAppeal.item_id == item.id))).scalar()
            task = (await session.execute(select(QaTask).where(QaTask.item_id == item.id))).scalar()
            sheet = await self._versions.sheet(session, item.sheet_version)
            people = {item.agent_id, *(i.inspector_id for i in inspections)}
            if appeal is not None:
                people.add(appeal.decided_by)
            if task is not None:
                people.add(task.inspector_id)
            names = await self._names(session, people)  # type: ignore[arg-type]
            if viewer.may(*INSPECTORS):
                audit(session, viewer.id, "qa.view_item", f"qa_item:{item.id}", conversation_id=item.conversation_id)
                await session.commit()
        by_message: dict[int, list[dict[str, Any]]] = {}
        for hit in item.hits:
            if hit.get("message_id") is not None:
                by_message.setdefault(int(hit["message_id"]), []).append(hit)
        lines = []
        for row in rows:
            meta = row.meta or {}
            whisper = bool(meta.get("whisper"))
            note = bool(meta.get("note")) or (bool(meta.get("internal")) and not whisper)
            lines.append({
                "id": row.id, "sender": row.sender, "sender_name": row.sender_name,
                "text": mask_text(row.text) if masked else row.text, "created_at": _iso(row.created_at),
                "note": note, "whisper": whisper, "hits": by_message.get(row.id, []),
            })
        segments = [
            {**s, "text": mask_text(str(s.get("text", ""))) if masked else s.get("text", "")} for s in item.segments
        ]
        latest = inspections[-1] if inspections else None
        return {
            "id": item.id, "conversation_id": item.conversation_id, "channel": item.channel,
            "agent_id": item.agent_id, "agent_name": names.get(item.agent_id or 0, ""), "group": item.group,
            "started_at": _iso(item.started_at), "closed_at": _iso(item.closed_at), "day": item.day,
            "figures": {
                "wait_seconds": item.wait_seconds, "first_response_seconds": item.first_response_seconds,
                "handle_seconds": item.handle_seconds, "longest_gap_seconds": item.longest_gap_seconds,
                "transfers": item.transfers, "message_count": item.message_count,
            },
            "handoff_reason": item.handoff_reason, "disposition": item.disposition, "csat": item.csat,
            "ticket_ids": item.ticket_ids, "complaint": item.complaint,
            "lines": lines, "hits": item.hits,
            "recording": {"path": item.recording_path, "seconds": item.recording_seconds, "segments": segments},
            "sheet": {"version": sheet.version, "name": sheet.name, "items": sheet.items, "pass_mark": sheet.pass_mark},
            "auto_scores": auto_scores(sheet.items, item.hits), "auto_score": item.auto_score,
            "ruleset_version": item.ruleset_version,
            "score": item.score, "passed": item.passed, "status": item.status,
            "task": None if task is None else {
                "id": task.id, "inspector_name": names.get(task.inspector_id, ""), "reason": task.reason,
                "due_at": _iso(task.due_at), "status": task.status,
            },
            "inspections": [
                {
                    "id": i.id, "kind": i.kind, "inspector_id": i.inspector_id,
                    "inspector_name": names.get(i.inspector_id, ""), "sheet_version": i.sheet_version,
                    "scores": i.scores, "comments": i.comments, "note": i.note, "total": i.total,
                    "passed": i.passed, "created_at": _iso(i.created_at),
                }
                for i in inspections
            ],
            "appeal": None if appeal is None else {
                "id": appeal.id, "reason": appeal.reason, "status": appeal.status,
                "decided_by_name": names.get(appeal.decided_by or 0, ""), "decision_note": appeal.decision_note,
                "final_score": appeal.final_score, "created_at": _iso(appeal.created_at),
                "decided_at": _iso(appeal.decided_at),
            },
            "appeal_until": _iso(self._appeal_until(latest)),
            "can_appeal": viewer.id == item.agent_id and appeal is None and item.status == "inspected"
            and latest is not None and utcnow() <= self._appeal_until(latest),  # type: ignore[operator]
        }

    def _appeal_until(self, inspection: QaInspection | None) -> datetime | None:
        if inspection is None:
            return None
        return _utc(inspection.created_at) + timedelta(days=self.appeal_days)

    async def tasks(self, viewer: Viewer, status: str = "open") -> list[dict[str, Any]]:
        """An inspector's own tasks; a supervisor sees everyone's."""
        async with self._sessions() as session:
            query = (
                select(QaTask, QaItem).join(QaItem, QaItem.id == QaTask.item_id)
                .order_by(QaTask.due_at, QaTask.id).limit(500)
            )
            if status in ("open", "done"):
                query = query.where(QaTask.status == status)
            if viewer.role == "inspector":
                query = query.where(QaTask.inspector_id == viewer.id)
            rows = (await session.execute(query)).all()
            names = await self._names(session, {t.inspector_id for t, _ in rows} | {i.agent_id for _, i in rows})
        return [
            {
                "task_id": task.id, "item_id": item.id, "reason": task.reason, "status": task.status,
                "due_at": _iso(task.due_at), "inspector_name": names.get(task.inspector_id, ""),
                "agent_name": names.get(item.agent_id or 0, ""), "channel": item.channel, "day": item.day,
                "auto_score": item.auto_score, "score": item.score, "hit_count": item.hit_count,
                "item_status": item.status,
            }
            for task, item in rows
        ]

    async def mine(self, agent_id: int) -> list[dict[str, Any]]:
        """我的质检: an agent's items that people have looked at, and the automatic ones of the last weeks."""
        async with self._sessions() as session:
            rows = list((await session.execute(
                select(QaItem).where(QaItem.agent_id == agent_id).order_by(QaItem.closed_at.desc()).limit(200)
            )).scalars())
            appeals = {
                a.item_id: a for a in (await session.execute(
                    select(QaAppeal).where(QaAppeal.item_id.in_([r.id for r in rows]))
                )).scalars()
            }
        return [
            {
                "item_id": r.id, "day": r.day, "channel": r.channel, "closed_at": _iso(r.closed_at),
                "auto_score": r.auto_score, "score": r.score, "passed": r.passed, "status": r.status,
                "hit_count": r.hit_count,
                "appeal_status": appeals[r.id].status if r.id in appeals else None,
            }
            for r in rows
        ]

    # -- inspection -----------------------------------------------------------------------------
    async def inspect(
        self, item_id: int, viewer: Viewer, scores_raw: Any, comments_raw: Any, note: Any
    ) -> dict[str, Any]:
        if not viewer.may(*INSPECTORS):
            raise QaError("forbidden")
        async with self._sessions() as session:
            item = await self._item(session, item_id, viewer)
            if item.status in ("appealed", "final"):
                raise QaError("not_inspectable")
            sheet = await self._versions.sheet(session, item.sheet_version)
            scores = check_scores(sheet.items, scores_raw)
            comments = await self._comments(session, item, comments_raw)
            total = round(sum(scores.values()), 2)
            passed = total >= sheet.pass_mark
            inspection = QaInspection(
                item_id=item.id, inspector_id=viewer.id, kind="inspection", sheet_version=sheet.version,
                scores=scores, comments=comments, note=str(note or "")[:2000], total=total, passed=passed,
            )
            session.add(inspection)
            item.score, item.passed, item.status = total, passed, "inspected"
            task = (await session.execute(select(QaTask).where(QaTask.item_id == item.id))).scalar()
            if task is not None and task.status == "open":
                task.status, task.done_at = "done", utcnow()
            audit(session, viewer.id, "qa.inspect", f"qa_item:{item.id}", total=total, passed=passed,
                  sheet_version=sheet.version, scores=scores)
            await session.commit()
            return {"item_id": item.id, "total": total, "passed": passed, "sheet_version": sheet.version}

    async def _comments(self, session: AsyncSession, item: QaItem, raw: Any) -> list[dict[str, Any]]:
        if raw in (None, ""):
            return []
        if not isinstance(raw, list):
            raise QaError("bad_comment")
        ids = set((await session.execute(
            select(Message.id).where(Message.conversation_id == item.conversation_id)
        )).scalars())
        comments = []
        for entry in raw:
            if not isinstance(entry, dict):
                raise QaError("bad_comment")
            message_id, text = entry.get("message_id"), str(entry.get("text") or "").strip()
            if message_id not in ids or not text or len(text) > MAX_COMMENT:
                raise QaError("bad_comment")
            comments.append({"message_id": message_id, "text": text})
        return comments

    # -- re-review (复核) ------------------------------------------------------------------------
    async def appeal(self, item_id: int, viewer: Viewer, reason: Any) -> dict[str, Any]:
        text = str(reason or "").strip()
        async with self._sessions() as session:
            item = await session.get(QaItem, item_id)
            if item is None:
                raise QaError("not_found")
            if item.agent_id != viewer.id:
                raise QaError("forbidden")
            if (await session.execute(select(QaAppeal.id).where(QaAppeal.item_id == item.id))).scalar():
                raise QaError("appeal_exists")
            if item.status != "inspected":
                raise QaError("not_inspected")
            latest = (await session.execute(
                select(QaInspection).where(QaInspection.item_id == item.id).order_by(QaInspection.id.desc()).limit(1)
            )).scalar()
            until = self._appeal_until(latest)
            if until is None or utcnow() > until:
                raise QaError("appeal_late")
            if not 5 <= len(text) <= MAX_REASON:
                raise QaError("bad_reason")
            appeal = QaAppeal(item_id=item.id, agent_id=viewer.id, reason=text)
            session.add(appeal)
            item.status = "appealed"
            await session.flush()
            audit(session, viewer.id, "qa.appeal", f"qa_item:{item.id}", appeal_id=appeal.id, reason=text)
            await session.commit()
            return {"appeal_id": appeal.id, "status": appeal.status}

    async def appeals(self, status: str = "open") -> list[dict[str, Any]]:
        async with self._sessions() as session:
            query = select(QaAppeal, QaItem).join(QaItem, QaItem.id == QaAppeal.item_id).order_by(QaAppeal.id)
            if status != "all":
                query = query.where(QaAppeal.status == status)
            rows = (await session.execute(query.limit(500))).all()
            names = await self._names(session, {a.agent_id for a, _ in rows})
        return [
            {
                "appeal_id": a.id, "item_id": i.id, "agent_name": names.get(a.agent_id, ""), "reason": a.reason,
                "status": a.status, "score": i.score, "final_score": a.final_score, "created_at": _iso(a.created_at),
            }
            for a, i in rows
        ]

    async def decide(
        self, appeal_id: int, viewer: Viewer, decision: Any, scores_raw: Any, note: Any
    ) -> dict[str, Any]:
        """A supervisor other than the inspector keeps the score or sets a new one; it is final."""
        if not viewer.may("supervisor"):
            raise QaError("forbidden")
        if decision not in ("uphold", "change"):
            raise QaError("bad_decision")
        async with self._sessions() as session:
            appeal = await session.get(QaAppeal, appeal_id)
            if appeal is None:
                raise QaError("not_found")
            if appeal.status != "open":
                raise QaError("appeal_closed")
            item = await session.get(QaItem, appeal.item_id)
            assert item is not None
            latest = (await session.execute(
                select(QaInspection).where(QaInspection.item_id == item.id).order_by(QaInspection.id.desc()).limit(1)
            )).scalar_one()
            if latest.inspector_id == viewer.id:
                raise QaError("own_inspection")
            sheet = await self._versions.sheet(session, latest.sheet_version)
            scores = dict(latest.scores) if decision == "uphold" else check_scores(sheet.items, scores_raw)
            total = round(sum(float(v) for v in scores.values()), 2)
            passed = total >= sheet.pass_mark
            session.add(QaInspection(
                item_id=item.id, inspector_id=viewer.id, kind="review", sheet_version=sheet.version, scores=scores,
                comments=[], note=str(note or "")[:2000], total=total, passed=passed,
            ))
            appeal.status = "upheld" if decision == "uphold" else "changed"
            appeal.decided_by, appeal.decided_at = viewer.id, utcnow()
            appeal.decision_note, appeal.final_score = str(note or "")[:2000], total
            item.score, item.passed, item.status = total, passed, "final"
            audit(session, viewer.id, "qa.decide", f"qa_item:{item.id}", appeal_id=appeal.id,
                  decision=appeal.status, before=latest.total, final=total)
            await session.commit()
            return {"appeal_id": appeal.id, "status": appeal.status, "final_score": total, "passed": passed}

"""Every QA step (inspection, appeal, decision, rule and sheet saves, exports) as an AuditLog row, in
the same transaction as the step. One function, so it can be swapped for core.audit when that lands."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AuditLog


def audit(session: AsyncSession, user_id: int | None, action: str, target: str, **data: Any) -> None:
    session.add(AuditLog(user_id=user_id, action=action, target=target, data=data))

"""The versioned rule set and score sheet: every save is a new row with the next version; the newest
scores new items; old versions stay so that every score can show the sheet it was made with."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models.qa import QaRuleSet, QaSheet
from qa.defaults import DEFAULT_RULES, DEFAULT_SHEET
from qa.rules import CompiledRules, clean_rules
from qa.sheets import clean_sheet


class Versions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._compiled: CompiledRules | None = None
        self._sheets: dict[int, QaSheet] = {}

    async def _ensure_defaults(self, session: AsyncSession) -> None:
        """Version 1 of the rules and the sheet on a new database (two workers may race: one wins)."""
        no_rules = (await session.execute(select(func.count(QaRuleSet.id)))).scalar_one() == 0
        no_sheet = (await session.execute(select(func.count(QaSheet.id)))).scalar_one() == 0
        if no_rules:
            session.add(QaRuleSet(version=1, rules=clean_rules(DEFAULT_RULES), note="初始规则", created_by="system"))
        if no_sheet:
            sheet = clean_sheet(DEFAULT_SHEET, {rule["id"] for rule in DEFAULT_RULES})
            session.add(QaSheet(version=1, created_by="system", **sheet))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()

    async def latest_rules(self, session: AsyncSession) -> QaRuleSet:
        row = (await session.execute(select(QaRuleSet).order_by(QaRuleSet.version.desc()).limit(1))).scalar()
        if row is None:
            await self._ensure_defaults(session)
            return await self.latest_rules(session)
        return row

    async def latest_sheet(self, session: AsyncSession) -> QaSheet:
        row = (await session.execute(select(QaSheet).order_by(QaSheet.version.desc()).limit(1))).scalar()
        if row is None:
            await self._ensure_defaults(session)
            return await self.latest_sheet(session)
        return row

    async def sheet(self, session: AsyncSession, version: int) -> QaSheet:
        if version not in self._sheets:
            row = (await session.execute(select(QaSheet).where(QaSheet.version == version))).scalar_one()
            self._sheets[version] = row
        return self._sheets[version]

    async def compiled(self, session: AsyncSession) -> CompiledRules:
        """The newest rule set, compiled once per version (a 10,000-word list builds one automaton)."""
        version = (await session.execute(select(func.max(QaRuleSet.version)))).scalar()
        if self._compiled is None or self._compiled.version != version:
            row = await self.latest_rules(session)
            self._compiled = CompiledRules(row.version, row.rules)
        return self._compiled

    async def save_rules(self, raw: Any, user: str, note: str = "") -> QaRuleSet:
        rules = clean_rules(raw)
        async with self._sessions() as session:
            sheet = await self.latest_sheet(session)
            ids = {rule["id"] for rule in rules}
            missing = sorted({r for item in sheet.items for r in item["rules"]} - ids)
            if missing:
                from qa.rules import RuleError

                raise RuleError(f"评分表 v{sheet.version} 还在使用这些规则，不能删除：{'、'.join(missing)}。")
            return await self._next(session, QaRuleSet, rules=rules, note=note[:200], created_by=user)

    async def save_sheet(self, raw: Any, user: str) -> QaSheet:
        async with self._sessions() as session:
            rules = await self.latest_rules(session)
            sheet = clean_sheet(raw, {rule["id"] for rule in rules.rules})
            return await self._next(session, QaSheet, created_by=user, **sheet)

    async def _next(self, session: AsyncSession, model: Any, **values: Any) -> Any:
        for _ in range(5):
            version = ((await session.execute(select(func.max(model.version)))).scalar() or 0) + 1
            row = model(version=version, **values)
            session.add(row)
            try:
                await session.commit()
                return row
            except IntegrityError:  # two editors saved at once: the second gets the next number
                await session.rollback()
        raise RuntimeError("could not allocate a version")

    async def history(self, model: Any) -> list[Any]:
        async with self._sessions() as session:
            await self.latest_rules(session)
            return list((await session.execute(select(model).order_by(model.version.desc()).limit(50))).scalars())

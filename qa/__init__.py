"""The QA center (质检中心): every closed conversation (and, later, call) becomes one QA item, scored by
versioned automatic rules on a versioned score sheet, sampled into inspection tasks, inspected by
people, re-reviewed on appeal (复核), searched and reported on. Content review screens an agent's
reply with the same word matcher (`QaCenter.screen`).

Built once per hub worker (`QaCenter.build`); `run()` is the worker's scorer loop."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.wordmatch import WordHit, WordMatcher
from qa.center import INSPECTORS, UNMASKED, QaDesk, QaError
from qa.content import ContentScreen, flagged_citizen_messages
from qa.masking import mask_text
from qa.recordings import attach_recording
from qa.reports import qa_report, service_report
from qa.rules import KINDS, CompiledRules, RuleError, clean_rules
from qa.sampling import Plan, weekly_minimum
from qa.scorer import Scorer
from qa.search import Query, search
from qa.sheets import SheetError
from qa.transcript import Transcript
from qa.versions import Versions


class QaCenter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Any) -> None:
        self.sessions = sessions
        self.settings = settings
        self.enabled = bool(settings.get("qa.enabled", True))
        self.timezone = str(settings.get("qa.timezone", "Asia/Shanghai"))
        self.plan = Plan.from_config(settings.get("qa.sampling"))
        self.versions = Versions(sessions)
        lookback = int(settings.get("qa.lookback_days", 7))
        grace = float(settings.get("qa.csat_grace_seconds", 20))
        self.scorer = Scorer(sessions, self.versions, self.plan, self.timezone, lookback, grace_seconds=grace)
        self.desk = QaDesk(sessions, self.versions, int(settings.get("qa.appeal_days", 7)))
        self.content = ContentScreen(sessions, list(settings.get("qa.screen_rules") or []))
        self.sweep_seconds = float(settings.get("qa.sweep_seconds", 5))

    async def attach_recording(self, conversation_id: str, path: str, seconds: float, segments: Any) -> Any:
        """For the call center: a finished call's recording and timed text on its QA item."""
        return await attach_recording(self.scorer, self.versions, conversation_id, path, seconds, segments)

    def screen(self, text: str) -> list[WordHit]:
        """Forbidden words in an agent's reply (empty: it may be sent)."""
        return self.content.screen(text)

    async def run(self) -> None:
        """This worker's scorer loop and the content screen's refresh."""
        async with self.sessions() as session:  # a new database gets version 1 of the rules and sheet
            await self.versions.latest_rules(session)
        await self.content.refresh(force=True)
        loops = [self._refresh_loop()]
        if self.enabled:
            loops.append(self.scorer.run(self.sweep_seconds))
        await asyncio.gather(*loops)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.content.every)
            try:
                await self.content.refresh()
            except Exception:  # a database blip: the old word list stays in force
                pass


__all__ = [
    "INSPECTORS", "KINDS", "UNMASKED", "CompiledRules", "ContentScreen", "Plan", "QaCenter", "QaDesk", "QaError",
    "Query", "RuleError", "Scorer", "SheetError", "Transcript", "Versions", "WordHit", "WordMatcher", "clean_rules",
    "flagged_citizen_messages", "mask_text", "qa_report", "search", "service_report", "weekly_minimum",
]

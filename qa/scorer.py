"""The automatic scorer: every closed conversation becomes exactly one QA item, soon after its close.

It is a database outbox: a sweep looks for closed conversations (within the look-back window) that
have no item, scores each and inserts the item, its automatic hits and, when sampled, its inspection
task in one transaction. The unique conversation id on `qa_items` makes it exactly once: a worker
killed mid-way leaves nothing half-written and the next sweep (on any worker) redoes that one; two
workers scoring the same conversation race on the insert and one loses harmlessly.

Run inside every hub worker (`QaCenter.run`, every `qa.sweep_seconds`) or alone:
`python -m qa.scorer [--once] [--database-url URL]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Conversation
from core.models.base import utcnow
from core.models.qa import QaItem
from qa.rules import CompiledRules
from qa.sampling import Plan, assign, reason_for
from qa.search_terms import terms
from qa.sheets import auto_scores
from qa.transcript import Transcript, load_transcripts
from qa.versions import Versions

log = logging.getLogger(__name__)


def build_item(
    transcript: Transcript, rules: CompiledRules, sheet_version: int, sheet_items: list[dict], pass_mark: float,
    zone: ZoneInfo,
) -> QaItem:
    """The QA item for one transcript (not yet stored): figures, automatic hits, automatic score."""
    hits = rules.evaluate(transcript)
    score = round(sum(auto_scores(sheet_items, hits).values()), 2)
    text = " ".join(line.text for line in transcript.visible()) + " " + " ".join(
        str(s.get("text", "")) for s in transcript.segments
    )
    agent_ids = transcript.agent_ids()
    return QaItem(
        conversation_id=transcript.conversation_id,
        channel=transcript.channel,
        citizen_id=transcript.citizen_id,
        agent_id=transcript.agent_id(),
        agent_ids=[str(a) for a in agent_ids],
        group=transcript.group,
        started_at=transcript.started_at,
        closed_at=transcript.closed_at,
        day=transcript.closed_at.astimezone(zone).strftime("%Y-%m-%d"),
        hour=transcript.started_at.astimezone(zone).hour,
        handed_off=transcript.handed_off,
        handoff_reason=transcript.handoff_reason,
        wait_seconds=transcript.wait_seconds(),
        first_response_seconds=transcript.first_response_seconds(),
        handle_seconds=transcript.handle_seconds(),
        longest_gap_seconds=transcript.longest_gap_seconds(),
        transfers=transcript.transfers,
        disposition=transcript.disposition,
        csat=transcript.csat,
        ticket_ids=[str(t) for t in transcript.ticket_ids],
        message_count=len(transcript.visible()),
        recording_path=transcript.recording_path,
        recording_seconds=transcript.recording_seconds,
        segments=transcript.segments,
        hits=[hit.to_json() for hit in hits],
        hit_count=sum(1 for hit in hits if hit.deduct > 0),
        complaint=rules.complaint(hits),
        ruleset_version=rules.version,
        sheet_version=sheet_version,
        auto_score=score,
        score=score,
        passed=score >= pass_mark,
        status="scored",
        search_text=" ".join(terms(text)),
    )


class Scorer:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], versions: Versions, plan: Plan,
        timezone: str = "Asia/Shanghai", lookback_days: int = 7, batch: int = 200, grace_seconds: float = 0.0,
    ) -> None:
        self._sessions = sessions
        self.sessions = sessions
        self._versions = versions
        self._plan = plan
        self._zone = ZoneInfo(timezone)
        self.zone = self._zone
        self._lookback = timedelta(days=lookback_days)
        self._batch = batch
        self._chunk = 20  # conversations per transaction (a killed worker redoes at most these)
        # the citizen's 满意度评价 comes right after the close: give it a moment before scoring
        self._grace = timedelta(seconds=grace_seconds)

    async def pending(self, session: AsyncSession) -> list[Conversation]:
        """Closed conversations in the window without an item, oldest close first."""
        now = utcnow()
        since = now - self._lookback
        query = (
            select(Conversation)
            .outerjoin(QaItem, QaItem.conversation_id == Conversation.id)
            .where(Conversation.closed_at >= since, Conversation.closed_at <= now - self._grace,
                   Conversation.status == "closed", QaItem.id.is_(None))
            .order_by(Conversation.closed_at)
            .limit(self._batch)
        )
        return list((await session.execute(query)).scalars())

    async def score(self, conversations: list[Conversation]) -> int:
        """Score and store these conversations' items (with their tasks when sampled) in one
        transaction: all or nothing. If another scorer stored one of them meanwhile, the chunk is
        redone one by one. Returns how many items this call stored."""
        if not conversations:
            return 0
        try:
            return await self._store(conversations)
        except IntegrityError:
            if len(conversations) == 1:
                return 0
        made = 0
        for conversation in conversations:
            try:
                made += await self._store([conversation])
            except IntegrityError:
                pass
        return made

    async def _store(self, conversations: list[Conversation]) -> int:
        async with self._sessions() as session:
            rules = await self._versions.compiled(session)
            sheet = await self._versions.latest_sheet(session)
            items = [
                build_item(t, rules, sheet.version, sheet.items, sheet.pass_mark, self._zone)
                for t in await load_transcripts(session, conversations)
            ]
            session.add_all(items)
            try:
                await session.flush()
                sampled = []
                for item in items:
                    reason = reason_for(self._plan, item.conversation_id, item.passed, item.complaint, item.csat)
                    if reason is not None:
                        sampled.append((item, reason))
                await assign(session, sampled, self._plan)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise
            return len(items)

    async def sweep(self) -> int:
        """Score everything pending, a chunk per transaction; returns how many items this call stored."""
        stored = 0
        while True:
            async with self._sessions() as session:
                batch = await self.pending(session)
            if not batch:
                return stored
            made = 0
            for start in range(0, len(batch), self._chunk):
                made += await self.score(batch[start:start + self._chunk])
            stored += made
            if made == 0:  # all taken by another scorer meanwhile: let the next tick look again
                return stored

    async def run(self, interval: float) -> None:
        """Sweep forever (each hub worker runs one; the unique item per conversation keeps them apart)."""
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database blip: the next tick tries again, nothing is half-written
                log.exception("QA sweep failed; retrying in %s s", interval)
            await asyncio.sleep(interval)


async def _main(database_url: str, once: bool, interval: float, batch: int) -> None:
    from core.config import load_settings
    from core.db import make_engine, make_sessionmaker

    settings = load_settings()
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    scorer = Scorer(
        sessions, Versions(sessions), Plan.from_config(settings.get("qa.sampling")),
        str(settings.get("qa.timezone", "Asia/Shanghai")), int(settings.get("qa.lookback_days", 7)), batch,
        float(settings.get("qa.csat_grace_seconds", 0)),
    )
    try:
        if once:
            print(await scorer.sweep(), flush=True)
        else:
            await scorer.run(interval)
    finally:
        await engine.dispose()


def main() -> None:
    from core.config import load_settings

    parser = argparse.ArgumentParser(description="Score closed conversations into QA items.")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--once", action="store_true", help="sweep once and exit")
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    settings = load_settings()
    url = args.database_url or settings.database_url
    interval = args.interval if args.interval is not None else float(settings.get("qa.sweep_seconds", 5))
    asyncio.run(_main(url, args.once, interval, args.batch))


if __name__ == "__main__":
    main()

"""满意度评价 (CSAT): the question after an agent closes a conversation, and the citizen's rating
(the latest one wins; every agent who served the conversation shares it).

Redis keys (core.redis_client.Keys): `csat(conversation)` (the closing agent, while a rating is
accepted), `served(conversation)` (handoff.assignment)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.models import ConversationEvent, CsatRating
from handoff.assignment import CSAT_TTL
from handoff.context import HandoffContext
from handoff.errors import HandoffError

MAX_COMMENT = 500


class Csat:
    def __init__(self, ctx: HandoffContext) -> None:
        self.ctx = ctx

    async def offer(self, conversation: Any, agent_id: int) -> None:
        """Ask the citizen to rate the service this agent has just closed."""
        ctx = self.ctx
        await ctx.redis.set(ctx.keys.csat(conversation.id), agent_id, ex=CSAT_TTL)
        await ctx.speaker.say(
            conversation,
            "system",
            ctx.config.texts["csat_question"],
            meta={"csat": True, "conversation_id": conversation.id, "scale": [1, 2, 3, 4, 5]},
        )

    async def rate(
        self, conversation_id: Any, channel_user_id: str | None, score: Any, comment: Any = "", *, thank: bool = True
    ) -> dict[str, Any]:
        """A citizen's 满意度评价 for a conversation an agent closed (the latest rating wins).

        `thank=False`: the caller thanks the citizen where they are now (a typed rating, flow.rating_reply)."""
        if not isinstance(conversation_id, str) or not conversation_id:
            raise HandoffError("bad_field")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise HandoffError("bad_score")
        comment = comment.strip() if isinstance(comment, str) else ""
        if len(comment) > MAX_COMMENT:
            raise HandoffError("too_long")
        ctx = self.ctx
        conversation = await ctx.conversations.get(conversation_id)
        if conversation is None or (channel_user_id is not None and conversation.channel_user_id != channel_user_id):
            raise HandoffError("not_found")
        closing_agent = await ctx.redis.get(ctx.keys.csat(conversation_id))
        if closing_agent is None:
            raise HandoffError("not_offered")
        served = sorted(await ctx.redis.smembers(ctx.keys.served(conversation_id)))
        values = {
            "citizen_id": conversation.citizen_id,
            "agent_id": int(closing_agent),
            "agent_ids": served,
            "score": score,
            "comment": comment,
            "created_at": datetime.now(UTC),
        }
        for _ in range(2):
            try:
                async with ctx.sessions() as session, session.begin():
                    row = (
                        await session.execute(select(CsatRating).where(CsatRating.conversation_id == conversation_id))
                    ).scalar_one_or_none()
                    if row is None:
                        session.add(CsatRating(conversation_id=conversation_id, **values))
                    else:
                        for name, value in values.items():
                            setattr(row, name, value)
                    session.add(
                        ConversationEvent(
                            conversation_id=conversation_id,
                            kind="csat",
                            actor="citizen",
                            data={"score": score, "comment": comment},
                        )
                    )
                break
            except IntegrityError:
                continue  # a second tab rated at the same moment: update theirs
        if thank:
            meta = {"csat_done": True, "score": score}
            await ctx.speaker.say(conversation, "system", ctx.config.texts["csat_thanks"], meta=meta)
        return {"conversation_id": conversation_id, "score": score}

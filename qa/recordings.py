"""A call's recording and its timed text on its QA item (the call center adds them): the recording
path and length, and segments `{start, end, speaker: agent|citizen, text}` in seconds. Attaching
scores the call's rules (silence, talk-over, word lists on what was said) with the item's transcript;
an item nobody has inspected yet takes the new automatic score."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.errors import Refusal
from core.models import Conversation
from core.models.qa import QaItem
from qa.scorer import Scorer, build_item
from qa.transcript import load_transcripts
from qa.versions import Versions


def clean_segments(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise Refusal(400, "录音文本格式错误。", "bad_segments")
    segments = []
    for index, item in enumerate(raw, start=1):
        try:
            start, end = float(item["start"]), float(item["end"])
            speaker, text = str(item["speaker"]), str(item.get("text") or "")
        except (KeyError, TypeError, ValueError) as error:
            raise Refusal(400, f"第 {index} 段录音文本缺少起止时间或说话人。", "bad_segments") from error
        if speaker not in ("agent", "citizen") or not 0 <= start <= end:
            raise Refusal(400, f"第 {index} 段录音文本的说话人或时间不正确。", "bad_segments")
        segments.append({"start": start, "end": end, "speaker": speaker, "text": text})
    return sorted(segments, key=lambda s: (s["start"], s["end"]))


async def attach_recording(
    scorer: Scorer, versions: Versions, conversation_id: str, path: str, seconds: float, segments: Any
) -> QaItem:
    """Put the recording on the conversation's item (scoring the conversation first if it has none)."""
    cleaned = clean_segments(segments)
    async with scorer.sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None or conversation.status != "closed":
            raise Refusal(409, "通话尚未结束，不能附加录音。", "not_closed")
    for _ in range(2):
        async with scorer.sessions() as session:
            item = (await session.execute(
                select(QaItem).where(QaItem.conversation_id == conversation_id)
            )).scalar()
            if item is None:
                await scorer.score([conversation])
                continue
            transcript = (await load_transcripts(session, [conversation]))[0]
            transcript.recording_path, transcript.recording_seconds = path, float(seconds)
            transcript.segments = cleaned
            rules = await versions.compiled(session)
            sheet = await versions.sheet(session, item.sheet_version)
            fresh = build_item(transcript, rules, sheet.version, sheet.items, sheet.pass_mark, scorer.zone)
            for field in ("recording_path", "recording_seconds", "segments", "hits", "hit_count", "complaint",
                          "search_text", "auto_score", "ruleset_version"):
                setattr(item, field, getattr(fresh, field))
            if item.status in ("scored", "sampled"):
                item.score, item.passed = fresh.auto_score, fresh.passed
            await session.commit()
            return item
    raise RuntimeError("the item could not be made")

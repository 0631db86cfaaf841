"""The knowledge base: entries, the answer engine over the published ones, import/export."""

from kb_sync.answering import AnswerOutcome, AnswerService, KbAnswer
from kb_sync.store import EntryView, KbStore, read_jsonl

__all__ = ["AnswerOutcome", "AnswerService", "EntryView", "KbAnswer", "KbStore", "read_jsonl"]

"""Conversation ownership (bot / queue / agent), conversations and their transcripts; skill
groups, routing and assignment, presence, 留言 tickets, transfer, close and CSAT (`Handoff`)."""

from handoff.conversations import ConversationStore, ConversationView, MessageView
from handoff.routing import HandoffConfig
from handoff.service import DISPOSITIONS, Handoff, HandoffError
from handoff.state import TRANSITIONS, Owner, Ownership, OwnerState, TransitionResult

__all__ = [
    "DISPOSITIONS",
    "TRANSITIONS",
    "ConversationStore",
    "ConversationView",
    "Handoff",
    "HandoffConfig",
    "HandoffError",
    "MessageView",
    "Owner",
    "OwnerState",
    "Ownership",
    "TransitionResult",
]

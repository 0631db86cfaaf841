"""Conversation ownership (bot / queue / agent), conversations and their transcripts."""

from handoff.conversations import ConversationStore, ConversationView, MessageView
from handoff.state import TRANSITIONS, Owner, Ownership, OwnerState, TransitionResult

__all__ = [
    "TRANSITIONS",
    "ConversationStore",
    "ConversationView",
    "MessageView",
    "Owner",
    "OwnerState",
    "Ownership",
    "TransitionResult",
]

"""Conversation ownership (bot / queue / agent), conversations and their transcripts; skill
groups, routing and assignment, presence, 留言 tickets, transfer, close and CSAT, supervision
(`Handoff`, a thin front over handoff.presence, .assignment, .waiting, .agent_actions, .csat,
.supervision, .sweeper, .triggers); the agent console's live side (`AgentConsole`); the
group-committed writer of transcript rows and transition records (`writer_for`,
`deliver_before_commit`); the console's 快捷回复 (`CannedStore`, `render_canned`) and 内部备注
(`add_note`). Handoff talks back to citizens through a `Speaker` (the message path) passed in."""

from handoff.assist import assist_items
from handoff.canned import CannedError, CannedStore
from handoff.canned import render as render_canned
from handoff.console import AgentConsole
from handoff.conversations import ConversationStore, ConversationView, MessageView
from handoff.message_writer import deliver_before_commit, writer_for
from handoff.notes import add_note
from handoff.routing import HandoffConfig
from handoff.service import DISPOSITIONS, Handoff, HandoffError
from handoff.speaker import Speaker
from handoff.state import TRANSITIONS, Owner, Ownership, OwnerState, TransitionResult

__all__ = [
    "assist_items",
    "AgentConsole",
    "CannedError",
    "CannedStore",
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
    "Speaker",
    "TransitionResult",
    "add_note",
    "deliver_before_commit",
    "render_canned",
    "writer_for",
]

"""The 客户信息 panel an agent sees the moment a conversation reaches them."""

from __future__ import annotations

from typing import Any

from crm.profiles import CitizenDirectory, mask
from handoff import ConversationStore

# Roles that see phone and ID numbers in full; everyone else sees them masked.
UNMASKED_ROLES = frozenset({"supervisor", "admin"})


async def build_screen_pop(
    citizens: CitizenDirectory,
    conversations: ConversationStore,
    conversation_id: str,
    *,
    viewer_id: int,
    viewer_role: str,
) -> dict[str, Any]:
    conversation = await conversations.get(conversation_id)
    if conversation is None:
        raise KeyError(conversation_id)
    citizen = await citizens.get(conversation.citizen_id)
    full = viewer_role in UNMASKED_ROLES
    previous = await conversations.previous_for_citizen(conversation.citizen_id, exclude=conversation_id)
    summaries = []
    for item in previous:
        summaries.append(
            {
                "id": item.id,
                "channel": item.channel,
                "started_at": item.started_at.isoformat(),
                "status": item.status,
                "summary": await conversations.first_citizen_text(item.id),
            }
        )
    await citizens.audit(
        viewer_id, "view_citizen", f"citizen:{conversation.citizen_id}", {"conversation": conversation_id}
    )
    return {
        "citizen": {
            "id": conversation.citizen_id,
            "name": citizen.name if citizen else None,
            "phone": (citizen.phone if full else mask(citizen.phone)) if citizen else None,
            "id_number": (citizen.id_number if full else mask(citizen.id_number)) if citizen else None,
            "tags": citizen.tags if citizen else [],
            "channel": conversation.channel,
            "visitor_id": conversation.channel_user_id,
        },
        "previous_conversations": summaries,
        "open_tickets": [],
    }

"""Phone and ID numbers: who sees them, and the one masking every package uses (issue #12, Security 7).

Staff outside UNMASKED_ROLES see a citizen's mainland mobile and resident ID numbers as `***` and the
last four characters: in profile fields (crm), in what citizens type (console, board, search, API
answers: hub), in the 未解决问题 list (kb_sync). `privacy.redact_at_ingest` masks what citizens type
before it is stored (flow), for deployments that want no copy at all.
"""

from __future__ import annotations

import re
from typing import Any

# Roles that see phone and ID numbers in full; everyone else sees them masked.
UNMASKED_ROLES = frozenset({"supervisor", "admin"})

# Not inside a longer run of letters or digits (a UUID's group, an order number), so ids in the same
# JSON are never touched: an 11-digit mobile (1[3-9]…, spaces or dashes allowed as 3-4-4), an 18-character
# resident ID (the last may be X) or a 15-digit old one.
_EDGE_BEFORE = r"(?<![0-9A-Za-z])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"
PHONE = re.compile(_EDGE_BEFORE + r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _EDGE_AFTER)
ID_NUMBER = re.compile(_EDGE_BEFORE + r"(?:\d{17}[\dXx]|\d{15})" + _EDGE_AFTER)


def sees_numbers(role: str | None) -> bool:
    return role in UNMASKED_ROLES


def mask(value: str | None, keep_tail: int = 4) -> str | None:
    """`***` and the last characters, as staff see phone and ID numbers they do not need."""
    if not value:
        return value
    return "***" + value[-keep_tail:] if len(value) > keep_tail else "***"


def _masked(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return mask(digits) or ""


def mask_text(text: str) -> str:
    """Every phone and ID number in free text masked ("我的电话13812345678" → "我的电话***5678")."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    return PHONE.sub(_masked, ID_NUMBER.sub(_masked, text))


def mask_json(data: Any) -> Any:
    """A JSON value with every string masked (keys are kept)."""
    if isinstance(data, str):
        return mask_text(data)
    if isinstance(data, list):
        return [mask_json(item) for item in data]
    if isinstance(data, dict):
        return {key: mask_json(value) for key, value in data.items()}
    return data

"""Phone and ID numbers inside free text, masked for roles that do not need them (质检员, 坐席):
mainland mobiles, landlines with an area code, and 18-digit 身份证号 keep only their last 4."""

from __future__ import annotations

import re

_NUMBERS = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"  # 身份证号
    r"|(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}"  # mobile
    r"|0\d{2,3}[- ]?\d{7,8}"  # landline
    r")(?![0-9A-Za-z])"
)


def mask_text(text: str) -> str:
    return _NUMBERS.sub(lambda m: "*" * (len(m.group(0)) - 4) + m.group(0)[-4:], text)

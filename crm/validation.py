"""Checks on what staff type into a citizen profile, with reasons in Chinese."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

# GB 11643-1999: weights of the first 17 digits and the check character for (sum mod 11).
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")

MAX_NAME = 64
MAX_NOTES = 2000
MAX_TAGS = 20


class ProfileError(ValueError):
    def __init__(self, field: str, reason: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.errors = errors or {field: reason}  # every bad field, for inline messages


def valid_id_number(value: str) -> bool:
    """An 18-character resident ID (身份证号) with a real birth date and the right check character."""
    value = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born > date.today() or born.year < 1900:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == value[17]


def valid_phone(value: str) -> bool:
    compact = value.replace(" ", "")
    return bool(_MOBILE.match(compact) or _LANDLINE.match(compact))


PROFILE_FIELDS = ("name", "phone", "id_number", "address", "tags", "notes", "vip", "flagged")
MAX_ADDRESS = 200


def check_profile(data: Any, *, partial: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    """Every field of a profile edit checked: (cleaned fields, {field: Chinese reason} for every bad one).

    `partial`: only the fields present are checked (an edit); otherwise a name is required (a new record).
    An empty phone, ID number or address clears it."""
    if not isinstance(data, dict) or not data:
        return {}, {"body": "请求内容不完整。"}
    errors: dict[str, str] = {}
    for key in sorted(set(data) - set(PROFILE_FIELDS)):
        errors[key] = "不支持修改该字段。"
    cleaned: dict[str, Any] = {}
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            errors["name"] = f"姓名不能为空，且不超过 {MAX_NAME} 个字。"
        else:
            cleaned["name"] = name.strip()
    if "phone" in data:
        phone = data["phone"]
        if isinstance(phone, str) and not phone.strip():
            cleaned["phone"] = None
        elif not isinstance(phone, str) or not valid_phone(phone.strip()):
            errors["phone"] = "电话号码格式不正确（手机号 11 位，或带区号的固定电话）。"
        else:
            cleaned["phone"] = phone.strip().replace(" ", "")
    if "id_number" in data:
        number = data["id_number"]
        if isinstance(number, str) and not number.strip():
            cleaned["id_number"] = None
        elif not isinstance(number, str) or not valid_id_number(number):
            errors["id_number"] = "身份证号不正确：请核对 18 位号码（含出生日期和末位校验码）。"
        else:
            cleaned["id_number"] = number.strip().upper()
    if "address" in data:
        address = data["address"]
        if not isinstance(address, str) or len(address.strip()) > MAX_ADDRESS:
            errors["address"] = f"地址不超过 {MAX_ADDRESS} 个字。"
        else:
            cleaned["address"] = address.strip()
    if "tags" in data:
        tags = data["tags"]
        if (
            not isinstance(tags, list)
            or len(tags) > MAX_TAGS
            or not all(isinstance(t, str) and t.strip() for t in tags)
        ):
            errors["tags"] = f"标签应为不超过 {MAX_TAGS} 个的非空文字。"
        else:
            cleaned["tags"] = sorted({t.strip()[:20] for t in tags})
    if "notes" in data:
        notes = data["notes"]
        if not isinstance(notes, str) or len(notes) > MAX_NOTES:
            errors["notes"] = f"备注不超过 {MAX_NOTES} 个字。"
        else:
            cleaned["notes"] = notes
    for flag, label in (("vip", "VIP"), ("flagged", "重点关注")):
        if flag in data:
            if not isinstance(data[flag], bool):
                errors[flag] = f"“{label}”只能是“是”或“否”。"
            else:
                cleaned[flag] = data[flag]
    return cleaned, errors


def clean_profile(data: Any) -> dict[str, Any]:
    """The fields of a profile edit, checked; raises ProfileError naming the first bad field."""
    cleaned, errors = check_profile(data)
    if errors:
        field = next(iter(errors))
        raise ProfileError(field, errors[field], errors)
    return cleaned

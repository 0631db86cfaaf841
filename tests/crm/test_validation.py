"""Profile checks: 身份证 checksum and birth date, phone formats, field limits."""

from __future__ import annotations

import pytest

from crm import ProfileError, clean_profile, valid_id_number, valid_phone


def _with_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def test_id_numbers_need_the_right_check_character_and_a_real_birth_date() -> None:
    good = _with_check("53250419900307123")  # 弥勒 area code, born 1990-03-07
    assert valid_id_number(good)
    assert valid_id_number(good.lower())
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    assert not valid_id_number(wrong_check)
    assert not valid_id_number(_with_check("53250419901307123"))  # month 13
    assert not valid_id_number(_with_check("53250421990307123"))  # born in the future
    assert not valid_id_number("5325041990030712")  # 16 characters
    assert valid_id_number("11010519491231002X")  # the standard's own example


def test_phone_numbers() -> None:
    assert valid_phone("13812345678") and valid_phone("0873-1234567")
    assert not valid_phone("12812345678") and not valid_phone("138123")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"name": "  "}, "name"),
        ({"phone": "12345"}, "phone"),
        ({"id_number": "530000000000000000"}, "id_number"),
        ({"tags": ["ok", ""]}, "tags"),
        ({"password_hash": "x"}, "password_hash"),
    ],
)
def test_bad_profile_edits_name_the_field_in_chinese(body: dict, field: str) -> None:
    with pytest.raises(ProfileError) as caught:
        clean_profile(body)
    assert caught.value.field == field
    assert any("\u4e00" <= ch <= "\u9fff" for ch in caught.value.reason)


def test_a_good_edit_is_normalised() -> None:
    cleaned = clean_profile({"name": " 王小明 ", "phone": "138 1234 5678", "tags": ["重点关注", "重点关注", "VIP"]})
    assert cleaned == {"name": "王小明", "phone": "13812345678", "tags": ["VIP", "重点关注"]}

"""The web chat's frame validation: every bad frame is named, in Chinese."""

from __future__ import annotations

import json

import pytest

from channels.web import FrameError, parse_frame, valid_visitor_id


def parse(raw: str | bytes):
    return parse_frame(raw, max_frame_chars=4000, max_text_chars=1000)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        ("[]", "bad_field"),
        ('{"text": "hi"}', "bad_field"),
        ('{"type": "message", "text": "hi"}', "bad_field"),
        ('{"type": "message", "text": 5, "client_id": "a"}', "bad_field"),
        ('{"type": "message", "text": "   ", "client_id": "a"}', "empty"),
        (json.dumps({"type": "message", "text": "长" * 1001, "client_id": "a"}), "too_long"),
        ("x" * 4001, "too_long"),
        ('{"type": "launch_missiles"}', "unknown_type"),
        ('{"type": "hello", "visitor_id": 42}', "bad_field"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(raw: str | bytes, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse(raw)
    assert caught.value.code == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in caught.value.reason)


def test_good_frames_parse() -> None:
    frame = parse(json.dumps({"type": "message", "text": "居住证怎么办？", "client_id": "c-1"}))
    assert frame.type == "message" and frame.data["text"] == "居住证怎么办？"
    assert parse('{"type": "human"}').type == "human"


def test_visitor_ids_from_browsers_are_kept_only_when_well_formed() -> None:
    kept = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert valid_visitor_id(kept) == kept
    minted = valid_visitor_id("'; drop table citizens; --")
    assert minted != kept and len(minted) == 36

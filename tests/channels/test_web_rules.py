"""Pure rules of the web widget: origins, file types by their first bytes, display names."""

from __future__ import annotations

import pytest

from channels.web import OriginPolicy, normalise_origin, origin_list
from hub.routes.web_widget import clean_name, frame_ancestors, sniff


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Bureau.Example.gov.cn", "https://bureau.example.gov.cn"),
        ("https://bureau.example.gov.cn:443/", "https://bureau.example.gov.cn"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("javascript:alert(1)", None),
        ("https://a.example/path", None),
        ("https://user@a.example", None),
        ("https://a.example:99999", None),
    ],
)
def test_origins_are_normalised(raw: str, expected: str | None) -> None:
    assert normalise_origin(raw) == expected


def test_allow_list_from_yaml_or_environment() -> None:
    assert origin_list(["https://a.example", "bogus", "https://a.example/"]) == ["https://a.example"]
    assert origin_list("https://a.example, http://b.example:81 https://c.example") == [
        "https://a.example",
        "http://b.example:81",
        "https://c.example",
    ]
    assert origin_list(None) == []


def test_policy_permits_own_and_listed_origins_only() -> None:
    policy = OriginPolicy(("https://bureau.example.gov.cn",), "https://hub.example.gov.cn")
    assert policy.permits(None, "hub.internal:8000")  # not a browser page
    assert policy.permits("https://bureau.example.gov.cn", "hub.internal:8000")
    assert policy.permits("https://hub.example.gov.cn", "hub.internal:8000")  # hub.public_url
    assert policy.permits("http://hub.internal:8000", "hub.internal:8000")  # the hub's own page
    assert not policy.permits("https://evil.example", "hub.internal:8000")
    assert not policy.permits("https://bureau.example.gov.cn.evil.example", "hub.internal:8000")
    assert not policy.permits("null", "hub.internal:8000")
    assert frame_ancestors(policy) == (
        "frame-ancestors 'self' https://bureau.example.gov.cn https://hub.example.gov.cn"
    )


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0", "jpg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"%PDF-1.7", "pdf"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"MZ\x90\x00", None),
        (b"<svg xmlns=", None),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_types_come_from_the_first_bytes(head: bytes, kind: str | None) -> None:
    assert sniff(head + b"\x00" * 32) == kind


def test_display_names_are_made_safe() -> None:
    assert clean_name("../../etc/passwd", "png") == "passwd"
    assert clean_name("C:\\Users\\张三\\证件照.JPG", "jpg") == "证件照.JPG"
    assert clean_name("bad\x00\x1bname\u202e.png", "png") == "badname.png"
    assert clean_name("", "pdf") == "未命名.pdf"
    assert len(clean_name("长" * 300 + ".png", "png")) == 100

"""WeChat pushes verified and parsed without a server: signatures, modes, message types,
hostile XML. Requests are built with wechatpy's own signer and crypto (tests/channels/wechat_fake.py)."""

from __future__ import annotations

import time

import pytest

from channels.base import OutboundMessage
from channels.wechat import PushError, WeChatConfig, open_push, plan_for, verify_url
from channels.wechat.channel import render_text, split_text
from channels.wechat.push import passive_text, wrap_reply
from tests.channels.wechat_fake import AES_KEY, APP_ID, SAMPLES, TOKEN, Platform, message_xml, openid

MODES = ["plaintext", "compatible", "safe"]


def config(mode: str = "safe", **extra) -> WeChatConfig:
    values = dict(enabled=True, app_id=APP_ID, app_secret="x", token=TOKEN, encoding_aes_key=AES_KEY, mode=mode)
    values.update(extra)
    return WeChatConfig.from_tree(values)


PLATFORM = Platform()


def test_server_url_verification_echoes_only_a_signed_echostr() -> None:
    args = PLATFORM.verification("hello_echo")
    assert verify_url(config(), args) == "hello_echo"
    with pytest.raises(PushError) as caught:
        verify_url(config(), {**args, "signature": "0" * 40})
    assert caught.value.status == 403 and "签名" in caught.value.reason
    with pytest.raises(PushError):
        verify_url(config(), {k: v for k, v in args.items() if k != "nonce"})


def test_a_stale_timestamp_is_refused() -> None:
    old = str(int(time.time()) - 3600)
    with pytest.raises(PushError) as caught:
        verify_url(config(), {**PLATFORM.query(timestamp=old), "echostr": "e"})
    assert caught.value.status == 403


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_message_type_in_each_mode(mode: str, kind: str) -> None:
    user = openid()
    query, body = PLATFORM.push(message_xml(kind, user, msg_id="1234567890123456", **SAMPLES[kind]), mode)
    push = open_push(config(mode), query, body)
    assert push.openid == user and push.encrypted == (mode != "plaintext")
    assert push.dedupe_id == "msg:1234567890123456"
    plan = plan_for(config(mode), push)
    assert plan.kind == "citizen" and plan.inbound is not None
    inbound = plan.inbound
    assert inbound.channel == "wechat" and inbound.channel_user_id == user and inbound.kind == kind
    expected = {
        "text": "居住证怎么办理",
        "voice": "公积金怎么提取",
        "image": "[图片]",
        "location": "[位置] 弥勒市政务服务中心（24.39, 103.41） https://uri.amap.com/marker?position=103.41,24.39",
        "link": "[链接] 办事指南 https://example.org/a",
    }[kind]
    assert inbound.text == expected
    if kind == "voice":
        assert inbound.meta["media_id"] == "media_voice_1" and inbound.meta["recognition"] == "公积金怎么提取"
    if kind == "image":
        assert inbound.meta["media_id"] == "media_image_1" and inbound.meta["pic_url"].endswith("x.jpg")
    if kind == "location":
        assert inbound.meta["latitude"] == "24.39" and inbound.meta["label"] == "弥勒市政务服务中心"
    if kind == "link":
        assert inbound.meta["url"] == "https://example.org/a"


def test_voice_without_recognition_keeps_the_media_id() -> None:
    query, body = PLATFORM.push(message_xml("voice", openid(), MediaId="m1", Format="amr"), "plaintext")
    plan = plan_for(config("plaintext"), open_push(config("plaintext"), query, body))
    assert plan.inbound.text == "[语音]" and plan.inbound.meta == {
        "media_id": "m1",
        "format": "amr",
        "no_recognition": True,
    }


@pytest.mark.parametrize("mode", MODES)
def test_events(mode: str) -> None:
    user = openid()
    cfg = config(mode, menu=[{"type": "click", "name": "居住证", "key": "K1", "question": "居住证怎么办理"}])

    def plan(**fields: str):
        query, body = PLATFORM.push(message_xml("event", user, created=1700000000, **fields), mode)
        push = open_push(cfg, query, body)
        return push, plan_for(cfg, push)

    push, subscribe = plan(Event="subscribe")
    assert subscribe.kind == "subscribe" and push.dedupe_id == f"evt:{user}:1700000000:subscribe:"
    assert plan(Event="unsubscribe")[1].kind == "note"
    _push, click = plan(Event="CLICK", EventKey="K1")
    assert click.kind == "citizen" and click.inbound.text == "居住证怎么办理" and click.inbound.meta["menu_key"] == "K1"
    assert click.inbound.channel_message_id == f"evt:{user}:1700000000:click:K1"
    assert plan(Event="CLICK", EventKey="UNKNOWN")[1].kind == "note"
    _push, view = plan(Event="VIEW", EventKey="https://example.org")
    assert view.kind == "note" and view.meta == {"event": "VIEW", "url": "https://example.org"}
    assert plan(Event="LOCATION", Latitude="1", Longitude="2")[1].kind == "ignore"


@pytest.mark.parametrize("mode", MODES)
def test_a_bad_signature_is_403(mode: str) -> None:
    query, body = PLATFORM.push(message_xml("text", openid(), Content="hi"), mode)
    for forged in ({**query, "signature": "f" * 40}, {**query, "msg_signature": "f" * 40}):
        if (
            mode == "plaintext"
            and forged.get("msg_signature") == "f" * 40
            and forged["signature"] == query["signature"]
        ):
            continue  # plaintext mode has no msg_signature to forge
        with pytest.raises(PushError) as caught:
            open_push(config(mode), forged, body)
        assert caught.value.status == 403


def test_safe_mode_refuses_plaintext_and_wrong_app_id() -> None:
    query, body = PLATFORM.push(message_xml("text", openid(), Content="hi"), "plaintext")
    with pytest.raises(PushError) as caught:
        open_push(config("safe"), query, body)
    assert caught.value.status == 400
    other = Platform(app_id="wx_other_account_00")
    query, body = other.push(message_xml("text", openid(), Content="hi"), "safe")
    with pytest.raises(PushError) as caught:
        open_push(config("safe"), query, body)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<xml><Content>&b;</Content></xml>",
        b'<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><FromUserName>&e;</FromUserName></xml>',
        b"<xml><FromUserName>a</FromUserName>",
        b"\xff\xfe<xml/>",
        b"",
        b"<notxml/>",
        b"<xml>just text</xml>",
        b"<xml><FromUserName>bad id!</FromUserName><MsgType>text</MsgType><CreateTime>1</CreateTime></xml>",
        b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><CreateTime>x</CreateTime></xml>",
        b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><CreateTime>1</CreateTime><MsgId>1a</MsgId></xml>",
        b"<xml><FromUserName>o1</FromUserName><MsgType>event</MsgType><CreateTime>1</CreateTime></xml>",
    ],
)
def test_hostile_or_malformed_xml_is_a_400(body: bytes) -> None:
    query = PLATFORM.query()
    with pytest.raises(PushError) as caught:
        open_push(config("plaintext"), query, body)
    assert caught.value.status == 400


def test_an_oversized_body_is_a_413() -> None:
    body = message_xml("text", openid(), Content="长" * 30000).encode("utf-8")
    with pytest.raises(PushError) as caught:
        open_push(config("plaintext"), PLATFORM.query(), body)
    assert caught.value.status == 413


@pytest.mark.parametrize("mode", MODES)
def test_passive_reply_is_encrypted_when_the_push_was(mode: str) -> None:
    query, body = PLATFORM.push(message_xml("text", "o_citizen_1", Content="hi"), mode)
    push = open_push(config(mode), query, body)
    wrapped = wrap_reply(config(mode), push, passive_text(push, "您好"))
    fields = PLATFORM.open_reply(wrapped, query)
    assert fields["Content"] == "您好" and fields["ToUserName"] == "o_citizen_1" and fields["MsgType"] == "text"
    assert ("<Encrypt>" in wrapped) == (mode != "plaintext")


def test_quick_replies_become_menu_links_and_long_texts_are_split() -> None:
    message = OutboundMessage(
        "c", 1, "bot", "智能客服", "请选择：", {"buttons": [{"title": "转人工", "payload": "/x"}]}
    )
    assert 'msgmenucontent=转人工&msgmenuid=1">转人工</a>' in render_text(message)
    chunks = split_text("政" * 1500)
    assert len(chunks) == 3 and all(len(c.encode()) <= 2000 for c in chunks) and "".join(chunks) == "政" * 1500


def test_config_is_validated_and_the_menu_is_stripped_for_wechat() -> None:
    with pytest.raises(ValueError):
        WeChatConfig.from_tree({"mode": "loud"})
    with pytest.raises(ValueError):
        WeChatConfig.from_tree({"enabled": True, "token": "t", "mode": "safe", "encoding_aes_key": "short"})
    cfg = config(menu=[{"name": "办事", "sub_button": [{"type": "click", "name": "a", "key": "A", "question": "q"}]}])
    assert cfg.menu_for_wechat() == {
        "button": [{"name": "办事", "sub_button": [{"type": "click", "name": "a", "key": "A"}]}]
    }
    assert cfg.menu_actions()["A"].question == "q"

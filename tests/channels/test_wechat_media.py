"""WeChat images, voice, locations and links, kept and shown to agents: a hub worker process (plaintext
mode), the fake WeChat API server serving `/cgi-bin/media/get`, a fake Rasa, real Redis and a real
database. Files land in the shared upload store (core.uploads) and are served to staff only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from channels.wechat import WeChatAPI, WeChatAPIError, WeChatConfig, open_push, plan_for
from core.db import make_engine
from core.models import Conversation, Message
from core.redis_client import Keys
from tests.channels.telegram_fake import ChannelHub, start_channel_hubs, stop_channel_hubs
from tests.channels.wechat_fake import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeRasa,
    FakeWeChat,
    Platform,
    message_xml,
    openid,
)
from tests.support import TEST_REDIS_URL, send_csrf_token, unique_prefix

PLATFORM = Platform()
JPG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
AMR = b"#!AMR\n" + bytes([0x3C, 0x48, 0xF5, 0x1F]) * 300


@dataclass
class MediaSystem:
    hubs: ChannelHub
    wechat: FakeWeChat
    uploads: Path

    @property
    def url(self) -> str:
        return self.hubs.url


@pytest.fixture(scope="module")
def wx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaSystem]:
    tmp = tmp_path_factory.mktemp("wechat-media")
    uploads = tmp / "uploads"
    wechat, rasa = FakeWeChat().start(), FakeRasa().start()
    env = {
        "RASA_URL": rasa.url,
        "ZWKF_CHANNELS__WEB__UPLOAD_DIR": str(uploads),
        "ZWKF_HANDOFF__WORKING_HOURS__ENABLED": "false",
        "ZWKF_WECHAT__ENABLED": "true",
        "ZWKF_WECHAT__MODE": "plaintext",
        "ZWKF_WECHAT__APP_ID": APP_ID,
        "ZWKF_WECHAT__APP_SECRET": APP_SECRET,
        "ZWKF_WECHAT__TOKEN": TOKEN,
        "ZWKF_WECHAT__ENCODING_AES_KEY": AES_KEY,
        "ZWKF_WECHAT__API_BASE_URL": wechat.url,
        "ZWKF_WECHAT__FETCH_USER_INFO": "false",
    }
    try:
        hubs = start_channel_hubs(tmp, env, workers=1, log_name="wechat-media")
    except BaseException:
        wechat.stop()
        rasa.stop()
        raise
    try:
        yield MediaSystem(hubs, wechat, uploads)
    finally:
        stop_channel_hubs(hubs)
        wechat.stop()
        rasa.stop()


async def push(wx: MediaSystem, kind: str, user: str, **fields: str) -> httpx.Response:
    query, body = PLATFORM.push(message_xml(kind, user, **fields), "plaintext")
    async with httpx.AsyncClient(timeout=15) as client:
        return await client.post(wx.url + "/wechat", params=query, content=body, headers={"Content-Type": "text/xml"})


async def citizen_row(wx: MediaSystem, user: str) -> Any:
    """The citizen's one message (the push is acknowledged only once it is committed)."""
    engine = make_engine(wx.hubs.database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                select(Message.text, Message.meta)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.channel == "wechat", Conversation.channel_user_id == user)
                .where(Message.sender == "citizen")
            )
            rows = found.all()
    finally:
        await engine.dispose()
    assert len(rows) == 1, rows
    return rows[0]


def media_calls(wx: MediaSystem) -> list[int]:
    return [code for path, code in wx.wechat.calls if path == "/cgi-bin/media/get"]


@asynccontextmanager
async def staff_client(
    wx: MediaSystem, username: str = "agent1", password: str = "agent1pass"
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=wx.url, timeout=15) as client:
        login = await client.post("/api/login", json={"username": username, "password": password})
        assert login.status_code == 200, login.text
        send_csrf_token(client, login)
        yield client


# ------------------------------------------------------------------------------ images and voice


async def test_an_image_is_kept_and_served_to_agents_only(wx: MediaSystem) -> None:
    user, media_id = openid(), "img_" + uuid.uuid4().hex
    wx.wechat.add_media(media_id, JPG, "image/jpeg")
    reply = await push(wx, "image", user, PicUrl="http://mmbiz.qpic.cn/x.jpg", MediaId=media_id)
    assert reply.status_code == 200
    text, meta = await citizen_row(wx, user)
    assert text == "[图片]"
    assert meta["kind"] == "image" and meta["media_id"] == media_id and meta["pic_url"].endswith("x.jpg")
    attachment = meta["attachment"]
    assert attachment["type"] == "image/jpeg" and attachment["size"] == len(JPG)
    assert attachment["name"] == "微信图片.jpg" and "media_error" not in meta
    assert attachment["url"].startswith("/api/web/uploads/")
    day, name = attachment["url"].split("/")[-2:]
    assert (wx.uploads / day / name).read_bytes() == JPG

    async with httpx.AsyncClient(base_url=wx.url) as anonymous:
        refused = await anonymous.get(attachment["url"])
        assert refused.status_code in (401, 403, 404) and refused.content != JPG
        # a web visitor id is no key to a WeChat citizen's file
        guessed = await anonymous.get(attachment["url"], params={"visitor_id": str(uuid.uuid4())})
        assert guessed.status_code in (401, 403, 404) and guessed.content != JPG
    async with staff_client(wx, "editor1", "editor1pass") as editor:
        assert (await editor.get(attachment["url"])).status_code in (401, 403, 404)
    async with staff_client(wx) as agent:
        served = await agent.get(attachment["url"])
    assert served.status_code == 200 and served.content == JPG
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_a_voice_message_keeps_its_recognition_text_and_its_amr_file(wx: MediaSystem) -> None:
    user, media_id = openid(), "voice_" + uuid.uuid4().hex
    wx.wechat.add_media(media_id, AMR, "audio/amr")
    reply = await push(wx, "voice", user, MediaId=media_id, Format="amr", Recognition="公积金怎么提取")
    assert reply.status_code == 200
    text, meta = await citizen_row(wx, user)
    assert text == "公积金怎么提取" and meta["kind"] == "voice" and meta["recognition"] == "公积金怎么提取"
    attachment = meta["attachment"]
    assert attachment["type"] == "audio/amr" and attachment["name"].endswith(".amr")
    assert attachment["size"] == len(AMR)
    async with staff_client(wx) as agent:
        served = await agent.get(attachment["url"])
    assert served.status_code == 200 and served.content == AMR
    assert served.headers["content-type"] == "audio/amr"


async def test_an_invalid_media_id_keeps_the_message_with_the_failure_noted(wx: MediaSystem) -> None:
    user, media_id = openid(), "gone_" + uuid.uuid4().hex  # never added: the fake answers 40007
    before = len(media_calls(wx))
    reply = await push(wx, "image", user, PicUrl="http://mmbiz.qpic.cn/y.jpg", MediaId=media_id)
    assert reply.status_code == 200
    text, meta = await citizen_row(wx, user)
    assert text == "[图片]" and meta["media_id"] == media_id and meta["pic_url"].endswith("y.jpg")
    assert "attachment" not in meta
    assert meta["media_error"] == 40007 and "media_id" in meta["media_error_text"]
    assert media_calls(wx)[before:] == [40007]


async def test_an_expired_token_is_refreshed_for_the_media_download(wx: MediaSystem) -> None:
    user, media_id = openid(), "img_" + uuid.uuid4().hex
    wx.wechat.add_media(media_id, JPG, "image/jpeg")
    # make sure the hub holds a token, then let WeChat expire it
    warm = openid()
    wx.wechat.add_media("warm_" + warm, JPG, "image/jpeg")
    assert (await push(wx, "image", warm, PicUrl="http://x/y.jpg", MediaId="warm_" + warm)).status_code == 200
    fetches = wx.wechat.token_fetches
    wx.wechat.expire_tokens()
    before = len(media_calls(wx))
    reply = await push(wx, "image", user, PicUrl="http://mmbiz.qpic.cn/z.jpg", MediaId=media_id)
    assert reply.status_code == 200
    _text, meta = await citizen_row(wx, user)
    assert meta["attachment"]["size"] == len(JPG)
    assert media_calls(wx)[before:] == [42001, 0] and wx.wechat.token_fetches == fetches + 1


async def test_a_slow_download_is_cut_short_and_the_message_still_recorded(wx: MediaSystem) -> None:
    user, media_id = openid(), "slow_" + uuid.uuid4().hex
    wx.wechat.add_media(media_id, JPG, "image/jpeg")
    wx.wechat.media_delay = 3.0
    try:
        started = time.monotonic()
        reply = await push(wx, "image", user, PicUrl="http://mmbiz.qpic.cn/s.jpg", MediaId=media_id)
        elapsed = time.monotonic() - started
    finally:
        wx.wechat.media_delay = 0.0
    assert reply.status_code == 200 and elapsed < 4.5  # inside WeChat's five seconds
    text, meta = await citizen_row(wx, user)
    assert text == "[图片]" and meta["media_error"] == "timeout" and "attachment" not in meta


async def test_a_text_push_never_asks_for_media(wx: MediaSystem) -> None:
    before = len(media_calls(wx))
    reply = await push(wx, "text", openid(), Content="居住证怎么办理")
    assert reply.status_code == 200
    assert len(media_calls(wx)) == before


# ------------------------------------------------------------------------------ links and locations


async def test_a_link_shows_its_url(wx: MediaSystem) -> None:
    user = openid()
    url = "https://example.org/guide?id=12"
    reply = await push(wx, "link", user, Title="办事指南", Description="一篇文章", Url=url)
    assert reply.status_code == 200
    text, meta = await citizen_row(wx, user)
    assert text == f"[链接] 办事指南 {url}" and meta["url"] == url and meta["kind"] == "link"


async def test_a_link_with_a_non_web_url_shows_only_its_title(wx: MediaSystem) -> None:
    user = openid()
    reply = await push(wx, "link", user, Title="奇怪的链接", Url="javascript:alert(1)")
    assert reply.status_code == 200
    text, meta = await citizen_row(wx, user)
    assert text == "[链接] 奇怪的链接" and meta["url"] == "javascript:alert(1)"


async def test_a_location_shows_its_label_coordinates_and_a_map_link(wx: MediaSystem) -> None:
    user = openid()
    fields = {"Location_X": "24.39", "Location_Y": "103.41", "Scale": "15", "Label": "弥勒市政务服务中心"}
    reply = await push(wx, "location", user, **fields)
    assert reply.status_code == 200
    text, meta = await citizen_row(wx, user)
    map_url = "https://uri.amap.com/marker?position=103.41,24.39"
    assert text == f"[位置] 弥勒市政务服务中心（24.39, 103.41） {map_url}" and meta["map_url"] == map_url
    assert meta["latitude"] == "24.39" and meta["longitude"] == "103.41"


# ------------------------------------------------------------------------------ the API call alone


@pytest.fixture
async def api() -> AsyncIterator[tuple[WeChatAPI, FakeWeChat]]:
    fake = FakeWeChat().start()
    client = aioredis.from_url(TEST_REDIS_URL, decode_responses=True)
    prefix = unique_prefix()
    config = WeChatConfig.from_tree(
        dict(enabled=True, app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN, encoding_aes_key=AES_KEY,
             api_base_url=fake.url, fetch_user_info=False)
    )
    wechat_api = WeChatAPI(config, client, Keys(prefix), backoff=(0.01,))
    yield wechat_api, fake
    await wechat_api.aclose()
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()
    fake.stop()


async def test_get_media_returns_the_bytes_and_raises_wechat_errors(api: tuple[WeChatAPI, FakeWeChat]) -> None:
    wechat_api, fake = api
    fake.add_media("m1", JPG, "image/jpeg")
    media = await wechat_api.get_media("m1")
    assert media.data == JPG and media.content_type == "image/jpeg" and 'filename="m1.jpg"' in media.disposition
    with pytest.raises(WeChatAPIError) as missing:
        await wechat_api.get_media("nope")
    assert missing.value.code == 40007 and missing.value.chinese == "media_id 无效或已过期"
    with pytest.raises(WeChatAPIError) as too_large:
        await wechat_api.get_media("m1", max_bytes=100)
    assert too_large.value.code == "too_large"
    fake.invalidate_tokens()
    assert (await wechat_api.get_media("m1")).data == JPG  # 40001: refreshed once


# ------------------------------------------------------------------------------ the plan alone (pure)


def plan_of(kind: str, **fields: str) -> Any:
    config = WeChatConfig.from_tree(dict(enabled=True, token=TOKEN, mode="plaintext"))
    query, body = PLATFORM.push(message_xml(kind, openid(), **fields), "plaintext")
    plan = plan_for(config, open_push(config, query, body))
    assert plan.kind == "citizen" and plan.inbound is not None
    return plan.inbound


@pytest.mark.parametrize(
    ("x", "y", "label", "text"),
    [
        ("24.39", "103.41", "", "[位置]（24.39, 103.41） https://uri.amap.com/marker?position=103.41,24.39"),
        ("nan", "103.41", "某地", "[位置] 某地"),
        ("91", "103.41", "某地", "[位置] 某地"),
        ("24.39", "东经", "某地", "[位置] 某地"),
    ],
)
def test_a_location_links_a_map_only_for_real_coordinates(x: str, y: str, label: str, text: str) -> None:
    inbound = plan_of("location", Location_X=x, Location_Y=y, Scale="15", Label=label)
    assert inbound.text == text and inbound.kind == "location"
    assert bool(inbound.meta.get("map_url")) == ("amap" in text)


def test_a_link_without_a_url_or_title_still_says_it_is_a_link() -> None:
    assert plan_of("link", Title="", Url="").text == "[链接]"
    assert plan_of("link", Title="指南", Url="https://a.example/x y").text == "[链接] 指南"  # no space-broken URL

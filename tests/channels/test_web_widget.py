"""The web widget's server side over real HTTP and WebSockets: a hub worker process with its
own database (demo accounts), a fake Rasa (quick-reply buttons, KB meta), real Redis.

Covers: who may frame /chat and open the chat socket (origin allow-list, close 4403), the
typing frame after the ack, quick replies in meta (and a pressed one's title), uploads (type
by magic bytes, size, owner; a bad one is a 4xx with a Chinese reason and stores nothing),
files served back only to their visitor or staff, 👍/👎 through /api/feedback.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from core.db import make_engine
from core.models import Message
from tests.channels.telegram_fake import ChannelHub, FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.support import ChatClient

ALLOWED = "https://bureau.example.gov.cn"
ALLOWED_WITH_PORT = "http://localhost:8765"

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
JPG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class WebSystem:
    hubs: ChannelHub
    rasa: FakeRasa
    uploads: Path

    @property
    def url(self) -> str:
        return self.hubs.url

    @property
    def ws_url(self) -> str:
        return self.hubs.url.replace("http://", "ws://") + "/ws/chat"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSystem]:
    tmp = tmp_path_factory.mktemp("web-widget")
    uploads = tmp / "uploads"
    rasa = FakeRasa().start()
    env = {
        "RASA_URL": rasa.url,
        "ZWKF_CHANNELS__WEB__ALLOWED_ORIGINS": f"{ALLOWED}, {ALLOWED_WITH_PORT}/",
        "ZWKF_CHANNELS__WEB__UPLOAD_DIR": str(uploads),
        "ZWKF_HANDOFF__WORKING_HOURS__ENABLED": "false",
    }
    hubs = start_channel_hubs(tmp, env, workers=1, log_name="web-widget")
    try:
        yield WebSystem(hubs, rasa, uploads)
    finally:
        stop_channel_hubs(hubs)
        rasa.stop()


def stored_files(web: WebSystem) -> list[str]:
    if not web.uploads.exists():
        return []
    return sorted(str(p.relative_to(web.uploads)) for p in web.uploads.rglob("*") if p.is_file())


async def message_count(web: WebSystem) -> int:
    engine = make_engine(web.hubs.database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count(Message.id)))).scalar_one())
    finally:
        await engine.dispose()


async def upload(web: WebSystem, visitor_id: str | None, name: str, data: bytes, mime: str = "image/png"):
    fields = {} if visitor_id is None else {"visitor_id": visitor_id}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(web.url + "/api/web/upload", data=fields, files={"file": (name, data, mime)})


# ------------------------------------------------------------------------------ framing and origins


async def test_chat_page_may_be_framed_only_by_the_allowed_origins(web: WebSystem) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(web.url + "/chat", params={"embed": "1"})
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert policy.startswith("frame-ancestors 'self' ")
    assert ALLOWED in policy and ALLOWED_WITH_PORT in policy
    assert "*" not in policy


@pytest.mark.parametrize("origin", [ALLOWED, ALLOWED_WITH_PORT, "HTTPS://Bureau.Example.gov.cn:443", "own"])
async def test_socket_accepts_the_allowed_and_own_origins(web: WebSystem, origin: str) -> None:
    if origin == "own":
        origin = web.url  # the hub's own /chat page
    async with websockets.connect(web.ws_url, origin=origin) as ws:
        await ws.send(json.dumps({"type": "hello", "visitor_id": None}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["type"] == "welcome"


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example.com", "https://bureau.example.gov.cn.evil.com", "http://bureau.example.gov.cn", "null"],
)
async def test_socket_refuses_other_origins_with_4403(web: WebSystem, origin: str) -> None:
    async with websockets.connect(web.ws_url, origin=origin) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.send(json.dumps({"type": "hello", "visitor_id": None}))
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_non_browser_clients_without_origin_are_served(web: WebSystem) -> None:
    async with ChatClient(web.url) as chat:
        assert chat.conversation_id


# ------------------------------------------------------------------------------ typing, buttons, votes


async def test_ack_is_followed_by_bot_typing_then_the_answer(web: WebSystem) -> None:
    async with ChatClient(web.url) as chat:
        await chat.say("慢一点回答")
        typing = await chat.next_frame("typing", timeout=5)
        assert typing["sender"] == "bot" and typing.get("active", True) is True
        kinds = [f["type"] for f in chat.frames]
        assert kinds.index("ack") < kinds.index("typing")
        answer = await chat.reply_from("bot", timeout=15)
        assert answer["text"] == "收到：慢一点回答"


async def test_quick_reply_buttons_reach_the_page_in_meta(web: WebSystem) -> None:
    async with ChatClient(web.url) as chat:
        await chat.say("请给我按钮")
        reply = await chat.reply_from("bot")
        assert reply["meta"]["buttons"] == [
            {"title": "办理居住证", "payload": "/ask_residence"},
            {"title": "转人工", "payload": "转人工"},
        ]
        # pressing one sends its payload and keeps the title the citizen saw
        client_id = uuid.uuid4().hex
        await chat.send_frame(
            {"type": "message", "text": "/ask_residence", "title": "办理居住证", "client_id": client_id}
        )
        ack = await chat.next_frame("ack", where=lambda f: f["client_id"] == client_id)
        assert ack["message"]["text"] == "/ask_residence"
        assert ack["message"]["meta"]["button_title"] == "办理居住证"
        await chat.send_frame({"type": "message", "text": "x", "title": 5, "client_id": "bad-title"})
        error = await chat.next_frame("error")
        assert error["code"] == "bad_field"


async def test_kb_answers_carry_their_entry_and_take_a_vote(web: WebSystem) -> None:
    async with ChatClient(web.url) as chat:
        await chat.say("知识库里的问题")
        reply = await chat.reply_from("bot")
        assert reply["meta"]["kb_entry_id"] == "D001"
        async with httpx.AsyncClient() as client:
            vote = await client.post(
                web.url + "/api/feedback", json={"message_id": reply["id"], "visitor_id": chat.visitor_id, "vote": "up"}
            )
            if vote.status_code == 404 and "没有找到" not in vote.text:
                pytest.skip("POST /api/feedback is not served yet (another engineer adds it)")
            assert vote.status_code == 200, vote.text
            stranger = await client.post(
                web.url + "/api/feedback",
                json={"message_id": reply["id"], "visitor_id": str(uuid.uuid4()), "vote": "up"},
            )
            assert stranger.status_code == 404


# ------------------------------------------------------------------------------ uploads


async def test_an_image_upload_is_stored_recorded_and_served_to_its_visitor(web: WebSystem) -> None:
    async with ChatClient(web.url) as chat:
        reply = await upload(web, chat.visitor_id, "证件照.png", PNG, "image/png")
        assert reply.status_code == 201, reply.text
        body = reply.json()
        attachment = body["attachment"]
        assert (
            attachment["name"] == "证件照.png" and attachment["type"] == "image/png" and attachment["size"] == len(PNG)
        )
        assert body["message"]["text"] == "[图片]"
        assert body["message"]["meta"]["kind"] == "image"
        assert body["message"]["meta"]["attachment"] == attachment
        # the citizen's own socket shows it too (the normal inbound path published it)
        echoed = await chat.next_frame("message", where=lambda f: f["message"]["id"] == body["message"]["id"])
        assert echoed["message"]["meta"]["attachment"]["url"] == attachment["url"]
        day, name = attachment["url"].split("/")[-2:]
        assert (web.uploads / day / name).read_bytes() == PNG
        async with httpx.AsyncClient(base_url=web.url) as client:
            mine = await client.get(attachment["url"], params={"visitor_id": chat.visitor_id})
            assert mine.status_code == 200 and mine.content == PNG
            assert mine.headers["content-type"] == "image/png"
            assert mine.headers["x-content-type-options"] == "nosniff"
            assert (await client.get(attachment["url"])).status_code == 404
            other = await client.get(attachment["url"], params={"visitor_id": str(uuid.uuid4())})
            assert other.status_code == 404 and "无权" in other.json()["reason"]
            login = await client.post("/api/login", json={"username": "agent1", "password": "agent1pass"})
            assert login.status_code == 200
            staff = await client.get(attachment["url"])
            assert staff.status_code == 200 and staff.content == PNG
            assert (await client.get("/api/web/uploads/../../config.yml")).status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "kind", "text"),
    [
        ("a.jpg", JPG, "image", "[图片]"),
        ("b.gif", GIF, "image", "[图片]"),
        ("c.webp", WEBP, "image", "[图片]"),
        ("办事指南.pdf", PDF, "file", "[文件] 办事指南.pdf"),
        ("no-extension", PNG, "image", "[图片]"),
    ],
)
async def test_every_allowed_type_is_taken(web: WebSystem, name: str, data: bytes, kind: str, text: str) -> None:
    async with ChatClient(web.url) as chat:
        reply = await upload(web, chat.visitor_id, name, data)
        assert reply.status_code == 201, reply.text
        assert reply.json()["message"]["meta"]["kind"] == kind
        assert reply.json()["message"]["text"] == text


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("text renamed .png", 415, "bad_type"),
        ("exe", 415, "bad_type"),
        ("png named .pdf", 415, "mismatch"),
        ("png named .txt", 415, "bad_type"),
        ("too large", 413, "too_large"),
        ("empty", 400, "empty"),
        ("no visitor", 400, "bad_visitor"),
        ("bad visitor", 400, "bad_visitor"),
        ("unknown visitor", 403, "no_conversation"),
        ("no file", 400, "no_file"),
        ("json body", 400, "not_multipart"),
    ],
)
async def test_bad_uploads_are_refused_with_a_reason_and_store_nothing(
    web: WebSystem, case: str, status: int, code: str
) -> None:
    async with ChatClient(web.url) as chat:
        files_before, rows_before = stored_files(web), await message_count(web)
        visitor: str | None = chat.visitor_id
        name, data = "x.png", PNG
        if case == "text renamed .png":
            data = "这不是图片".encode() * 10
        elif case == "exe":
            name, data = "setup.exe", b"MZ\x90\x00" + b"\x00" * 200
        elif case == "png named .pdf":
            name = "合同.pdf"
        elif case == "png named .txt":
            name = "readme.txt"
        elif case == "too large":
            data = PNG + b"\x00" * (5 * 1024 * 1024)
        elif case == "empty":
            data = b""
        elif case == "no visitor":
            visitor = None
        elif case == "bad visitor":
            visitor = "../../etc/passwd"
        elif case == "unknown visitor":
            visitor = str(uuid.uuid4())
        async with httpx.AsyncClient(timeout=60) as client:
            if case == "no file":
                reply = await client.post(
                    web.url + "/api/web/upload", data={"visitor_id": visitor}, files={"x": ("", b"")}
                )
            elif case == "json body":
                reply = await client.post(web.url + "/api/web/upload", json={"visitor_id": visitor})
            else:
                reply = await upload(web, visitor, name, data, "image/png")
        assert reply.status_code == status, reply.text
        body: dict[str, Any] = reply.json()
        assert body["code"] == code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body["reason"])
        await asyncio.sleep(0.2)
        assert stored_files(web) == files_before
        assert await message_count(web) == rows_before

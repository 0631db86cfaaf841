"""The agent console's features over its real socket protocol, in process: the hub's own
composition root (`build_services`) on a real Redis and each real database, the real event
bus, the real web chat channel and console with in-memory sockets, a small published KB
behind the real answer engine. Rasa is not needed (转人工 hands off before the bot is asked).

Covers: 内部备注 (colleagues see it after a transfer, the citizen never does, in no frame and
not in the history after a reload; marked internal in the stored transcript), typing both
ways, agent assist (top KB answers for the citizen's last message, refreshed per message,
none for an image), and a reconnecting console that gets everything that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from channels import InboundMessage
from core.config import Settings
from core.models import AuditLog, Message, User
from hub.auth import StaffUser
from hub.services import Services, build_services

NOTE = "市民情绪激动，已核实身份证号，勿再索要"
KB = [
    {
        "id": "K-JZZ",
        "branch": "居住证",
        "question": "居住证怎么办理？",
        "similar": ["办居住证要带什么材料", "居住证在哪里申请"],
        "answer": "<p>携带身份证、照片和住所证明到居住地派出所办理。</p>",
        "short_answer": "带身份证、照片、住所证明到派出所办理。",
    },
    {
        "id": "K-SBK",
        "branch": "社保",
        "question": "社保卡丢了怎么补办？",
        "similar": ["社保卡挂失", "社保卡遗失补卡"],
        "answer": "<p>先拨打12333挂失，再携带身份证到社保服务大厅补办。</p>",
    },
    {
        "id": "K-GJJ",
        "branch": "公积金",
        "question": "公积金怎么提取？",
        "similar": ["提取住房公积金", "公积金取出来"],
        "answer": "<p>在公积金中心网站或窗口申请提取。</p>",
    },
]


class Socket:
    """An in-memory WebSocket: frames pushed in are read by the server; what it sends is kept."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._arrived = asyncio.Event()
        self._read = 0
        self.task: asyncio.Task[None] | None = None

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))
        self._arrived.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._inbox.put_nowait(None)

    def __aiter__(self) -> Socket:
        return self

    async def __anext__(self) -> str:
        item = await self._inbox.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def push(self, frame: dict[str, Any]) -> None:
        self._inbox.put_nowait(json.dumps(frame, ensure_ascii=False))

    async def next(
        self, kind: str, where: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The next frame of `kind` after the last one returned (others are skipped, kept in `sent`)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._read < len(self.sent):
                frame = self.sent[self._read]
                self._read += 1
                if frame.get("type") == kind and (where is None or where(frame)):
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} frame; last frames: {self.sent[-5:]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))

    def text(self) -> str:
        return json.dumps(self.sent, ensure_ascii=False)


@dataclass
class Rig:
    services: Services
    users: dict[str, StaffUser]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def agent(self, name: str) -> Socket:
        ws = Socket()
        ws.task = asyncio.create_task(self.services.console.serve(ws, self.users[name]))
        self.tasks.append(ws.task)
        return ws

    async def drop(self, ws: Socket) -> None:
        """The connection breaks: the server's side of the socket ends."""
        await ws.close()
        await ws.task

    async def citizen(self, visitor: str | None = None) -> tuple[Socket, str, str]:
        ws = Socket()
        self.tasks.append(asyncio.create_task(self.services.web.serve(ws)))
        ws.push({"type": "hello", "visitor_id": visitor})
        welcome = await ws.next("welcome")
        return ws, welcome["visitor_id"], welcome["conversation_id"]

    async def handed_to(self, agent: Socket, citizen: Socket, conversation_id: str) -> dict[str, Any]:
        """The citizen asks for a person and `agent` accepts; returns the agent's assigned frame."""
        citizen.push({"type": "message", "text": "转人工", "client_id": uuid.uuid4().hex})
        await agent.next("queue", where=lambda f: any(i["conversation_id"] == conversation_id for i in f["items"]))
        agent.push({"type": "accept", "conversation_id": conversation_id})
        return await agent.next("assigned", where=lambda f: f["conversation_id"] == conversation_id)

    async def says(self, citizen: Socket, text: str) -> dict[str, Any]:
        client_id = uuid.uuid4().hex
        citizen.push({"type": "message", "text": text, "client_id": client_id})
        return (await citizen.next("ack", where=lambda f: f["client_id"] == client_id))["message"]

    async def stored(self, conversation_id: str) -> list[Message]:
        async with self.services.sessions() as session:
            rows = await session.execute(
                select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
            )
            return list(rows.scalars())


@pytest.fixture
async def rig(settings: Settings, redis_client: aioredis.Redis) -> AsyncIterator[Rig]:
    services = await build_services(settings)
    users: dict[str, StaffUser] = {}
    async with services.sessions() as session, session.begin():
        for username, name, role in (
            ("agent1", "张敏", "agent"),
            ("agent2", "李强", "agent"),
            ("super1", "赵磊", "supervisor"),
        ):
            row = User(username=username, display_name=name, password_hash="x", role=role)
            session.add(row)
            await session.flush()
            users[username] = StaffUser(row.id, username, name, role)
    await services.kb.upsert(KB, status="published", editor="test")
    await services.answers.notify_changed()
    await services.bus.start()
    made = Rig(services, users)
    try:
        yield made
    finally:
        for task in made.tasks:
            task.cancel()
        # bounded: a console task that outlives its cancellation must not hang the run
        await asyncio.wait(made.tasks, timeout=10) if made.tasks else None
        await services.close()


async def test_an_internal_note_is_for_colleagues_and_never_reaches_the_citizen(rig: Rig) -> None:
    citizen, visitor, conv = await rig.citizen()
    zhang, li, boss = rig.agent("agent1"), rig.agent("agent2"), rig.agent("super1")
    await li.next("presence")
    await rig.handed_to(zhang, citizen, conv)
    boss.push({"type": "watch", "conversation_id": conv})
    await boss.next("watching")

    # an empty or too long note is refused in Chinese and stores nothing
    zhang.push({"type": "note", "conversation_id": conv, "text": "   "})
    refused = await zhang.next("error")
    assert refused["code"] == "note_empty" and refused["reason"] == "备注内容不能为空。"
    zhang.push({"type": "note", "conversation_id": conv, "text": "长" * 1001})
    assert (await zhang.next("error"))["code"] == "note_too_long"
    before = len(await rig.stored(conv))

    zhang.push({"type": "note", "conversation_id": conv, "text": NOTE, "client_id": "n1"})
    ack = await zhang.next("note_ack", where=lambda f: f["client_id"] == "n1")
    assert ack["message"]["text"] == NOTE and ack["message"]["sender_name"] == "张敏"
    assert ack["message"]["meta"]["internal"] is True
    live = await boss.next("note")  # the supervisor watching sees it live
    assert live["message"]["id"] == ack["message"]["id"]
    assert len(await rig.stored(conv)) == before + 1

    # another agent cannot write on a conversation that is not theirs
    li.push({"type": "note", "conversation_id": conv, "text": "我也想备注"})
    assert (await li.next("error"))["code"] == "not_yours"

    # 转接 to 李强: his screen shows the note in the transcript, marked internal
    zhang.push({"type": "transfer", "conversation_id": conv, "to_agent": "agent2", "memo": "请继续办理"})
    assigned = await li.next("assigned", where=lambda f: f["conversation_id"] == conv)
    notes = [m for m in assigned["transcript"] if m["text"] == NOTE]
    assert len(notes) == 1 and notes[0]["meta"]["internal"] and notes[0]["sender_name"] == "张敏"
    # 李强 adds his own; the supervisor may too
    li.push({"type": "note", "conversation_id": conv, "text": "已电话回访", "client_id": "n2"})
    await li.next("note_ack", where=lambda f: f["client_id"] == "n2")
    boss.push({"type": "note", "conversation_id": conv, "text": "班长：注意时限", "client_id": "n3"})
    await boss.next("note_ack", where=lambda f: f["client_id"] == "n3")
    await li.next("note", where=lambda f: f["message"]["text"] == "班长：注意时限")

    # the citizen: in no frame, and not in the history of a fresh page
    await rig.says(citizen, "好的谢谢")
    again, _, same = await rig.citizen(visitor)
    assert same == conv
    for text in (NOTE, "已电话回访", "班长：注意时限"):
        assert text not in citizen.text() and text not in again.text()
    # the stored transcript (what QA reads) keeps all three, each marked internal
    stored = [m for m in await rig.stored(conv) if m.meta.get("internal")]
    assert [(m.text, m.sender_name) for m in stored] == [
        (NOTE, "张敏"),
        ("已电话回访", "李强"),
        ("班长：注意时限", "赵磊"),
    ]
    assert all(m.meta.get("note") for m in stored)


async def test_typing_reaches_the_other_side_both_ways(rig: Rig) -> None:
    citizen, _, conv = await rig.citizen()
    zhang, li = rig.agent("agent1"), rig.agent("agent2")

    # typing to the bot is nobody's business: no frame reaches any agent
    citizen.push({"type": "typing"})
    await rig.handed_to(zhang, citizen, conv)
    assert not [f for f in zhang.sent if f["type"] == "typing"]

    # the citizen types: the serving agent sees it on that conversation, then sees it stop
    citizen.push({"type": "typing"})
    shown = await zhang.next("typing")
    assert shown == {"type": "typing", "conversation_id": conv, "sender": "citizen", "active": True}
    citizen.push({"type": "typing", "active": False})
    assert (await zhang.next("typing"))["active"] is False
    citizen.push({"type": "typing", "active": "yes"})
    assert (await citizen.next("error"))["code"] == "bad_field"

    # the agent types: the citizen's page gets the same frame the bot's typing uses, then a stop
    zhang.push({"type": "typing", "conversation_id": conv})
    assert await citizen.next("typing") == {"type": "typing", "sender": "agent"}
    zhang.push({"type": "typing", "conversation_id": conv, "active": False})
    assert await citizen.next("typing") == {"type": "typing", "sender": "agent", "active": False}

    # nobody else can make the citizen see "typing"; a bad value is refused
    li.push({"type": "typing", "conversation_id": conv})
    assert (await li.next("error"))["code"] == "not_yours"
    zhang.push({"type": "typing", "conversation_id": conv, "active": 1})
    assert (await zhang.next("error"))["code"] == "bad_field"
    await rig.says(citizen, "在吗")
    assert [f["sender"] for f in citizen.sent if f["type"] == "typing"] == ["agent", "agent"]
    assert not [f for f in li.sent if f["type"] == "typing"]


async def test_agent_assist_suggests_kb_answers_for_each_new_citizen_message(rig: Rig) -> None:
    citizen, visitor, conv = await rig.citizen()
    zhang = rig.agent("agent1")
    await rig.handed_to(zhang, citizen, conv)

    asked = await rig.says(citizen, "办居住证要带什么材料")
    assist = await zhang.next("assist", where=lambda f: f["message_id"] == asked["id"])
    assert assist["conversation_id"] == conv and assist["text"] == "办居住证要带什么材料"
    best = assist["items"][0]
    assert best["entry_id"] == "K-JZZ" and best["question"] == "居住证怎么办理？"
    assert best["short_answer"] == "带身份证、照片、住所证明到派出所办理。"
    assert best["answer"] == "携带身份证、照片和住所证明到居住地派出所办理。"  # plain text for the reply box
    assert 1 <= len(assist["items"]) <= 3

    # an image: nothing to suggest; the next text gets fresh answers
    image = InboundMessage(
        "web",
        rig.services.web.public_id(visitor),  # the conversation is the credential's public id
        "[图片]",
        channel_message_id=f"{visitor}:img",
        kind="image",
        meta={"attachment": {"url": "/api/web/uploads/2026-01-01/" + "a" * 32 + ".png", "name": "a.png"}},
    )
    photo = await rig.services.dispatcher.on_inbound(image)
    lost = await rig.says(citizen, "我的社保卡丢了")
    fresh = await zhang.next("assist", where=lambda f: f["message_id"] == lost["id"])
    assert fresh["items"][0]["entry_id"] == "K-SBK"
    assert not [f for f in zhang.sent if f["type"] == "assist" and f["message_id"] == photo.id]

    # a console opening the conversation later gets the answers for the last citizen message with it
    li = rig.agent("agent2")
    await li.next("presence")
    zhang.push({"type": "transfer", "conversation_id": conv, "to_agent": "agent2"})
    await li.next("assigned", where=lambda f: f["conversation_id"] == conv)
    follows = await li.next("assist", where=lambda f: f["conversation_id"] == conv)  # right after the screen-pop
    assert follows["message_id"] == lost["id"] and follows["items"][0]["entry_id"] == "K-SBK"


async def test_a_reconnecting_console_gets_everything_that_arrived_meanwhile(rig: Rig) -> None:
    first, _, conv_a = await rig.citizen()
    second, _, conv_b = await rig.citizen()
    zhang = rig.agent("agent1")
    await rig.handed_to(zhang, first, conv_a)
    await rig.handed_to(zhang, second, conv_b)
    boss = rig.agent("super1")
    await boss.next("board")

    # the socket drops (a network blip); the sweeper has not given up on her yet
    await rig.drop(zhang)
    missed = [await rig.says(first, f"您好，我补充第{n}点") for n in range(1, 4)]
    boss.push({"type": "note", "conversation_id": conv_a, "text": "班长备注：加急", "client_id": "b1"})
    note = (await boss.next("note_ack"))["message"]
    boss.push({"type": "take_over", "conversation_id": conv_b})  # B leaves her while she is away
    await boss.next("assigned", where=lambda f: f["conversation_id"] == conv_b)

    back = rig.agent("agent1")
    sync = await back.next("sync")
    assert sync["conversation_ids"] == [conv_a]  # the console drops B's tab
    assigned = await back.next("assigned", where=lambda f: f["conversation_id"] == conv_a)
    got = {m["id"] for m in assigned["transcript"]}
    assert {m["id"] for m in missed} | {note["id"]} <= got
    assert got == {m.id for m in await rig.stored(conv_a)}  # every stored line, none left out
    assert (await back.next("assist"))["message_id"] == missed[-1]["id"]
    # and the live stream goes on on the new socket
    after = await rig.says(first, "还在吗")
    assert (await back.next("message", where=lambda f: f["message"]["id"] == after["id"]))["message"][
        "text"
    ] == "还在吗"


async def test_every_screen_pop_is_audited_and_the_assist_comes_after_it(rig: Rig) -> None:
    """The CRM panel reaches the agent first (its `view_citizen` audit row is written right
    after it), and 智能推荐 follows in its own frame; a transfer target, a watching supervisor
    and a reconnecting console each see the panel, and each view is an audit row."""
    citizen, _visitor, conv = await rig.citizen()
    zhang, li, boss = rig.agent("agent1"), rig.agent("agent2"), rig.agent("super1")
    await li.next("presence")
    assigned = await rig.handed_to(zhang, citizen, conv)
    citizen_id = assigned["screen_pop"]["citizen"]["id"]
    kinds = [f["type"] for f in zhang.sent if f.get("conversation_id") == conv and f["type"] in ("assigned", "assist")]
    assert kinds[0] == "assigned"
    assist = await zhang.next("assist", where=lambda f: f["conversation_id"] == conv)
    assert assist["text"] == "转人工"  # the citizen's last line, suggested for after the panel

    boss.push({"type": "watch", "conversation_id": conv})
    await boss.next("watching")
    zhang.push({"type": "transfer", "conversation_id": conv, "to_agent": "agent2", "memo": "请继续办理"})
    await li.next("assigned", where=lambda f: f["conversation_id"] == conv)
    await rig.drop(li)
    li_again = rig.agent("agent2")
    await li_again.next("assigned", where=lambda f: f["conversation_id"] == conv)

    # the agent's replies still reach the citizen (the reply path reads no record it already has)
    li_again.push({"type": "reply", "conversation_id": conv, "text": "您好，我是李强", "client_id": "r1"})
    await li_again.next("ack", where=lambda f: f["client_id"] == "r1")
    seen = await citizen.next("message", where=lambda f: f["message"]["sender"] == "agent")
    assert seen["message"]["text"] == "您好，我是李强"

    expected = sorted([rig.users["agent1"].id, rig.users["super1"].id, rig.users["agent2"].id, rig.users["agent2"].id])
    views: list[int] = []
    for _ in range(100):  # written just after each frame left: wait until all four have landed
        async with rig.services.sessions() as session:
            rows = await session.execute(
                select(AuditLog.user_id, AuditLog.data).where(
                    AuditLog.action == "view_citizen", AuditLog.target == f"citizen:{citizen_id}"
                )
            )
            found = list(rows)
        views = sorted(user for user, data in found if data.get("conversation") == conv)
        if len(views) >= len(expected):
            break
        await asyncio.sleep(0.05)
    assert views == expected

"""The console's HTTP side on a real hub worker process (demo accounts and 快捷回复 seeded, real
Redis, real database; no Rasa needed: 转人工 hands off before the bot is asked):

- 快捷回复 CRUD: who may do what, 4xx with a Chinese reason that changes nothing, variables
  filled in for the agent's own conversation (the citizen's name from the CRM, else 市民朋友);
- a citizen's image reaches the console as an attachment that agents may open and nobody
  else (a KB editor, an anonymous browser) can fetch.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from hub.seed import DEMO_CANNED
from tests.channels.telegram_fake import ChannelHub, start_channel_hubs, stop_channel_hubs
from tests.support import AgentClient, ChatClient, send_csrf_token

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    tmp = tmp_path_factory.mktemp("console-http")
    env = {
        "RASA_URL": "http://127.0.0.1:9",
        "ZWKF_CHANNELS__WEB__UPLOAD_DIR": str(tmp / "uploads"),
        "ZWKF_HANDOFF__WORKING_HOURS__ENABLED": "false",
    }
    hubs = start_channel_hubs(tmp, env, workers=1, log_name="console-http")
    try:
        yield hubs
    finally:
        stop_channel_hubs(hubs)


async def logged_in(hub: ChannelHub, username: str | None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=hub.url, timeout=30)
    if username:
        reply = await client.post("/api/login", json={"username": username, "password": f"{username}pass"})
        assert reply.status_code == 200
        send_csrf_token(client, reply)
    return client


@pytest.fixture
async def clients(hub: ChannelHub) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    made = {name or "anonymous": await logged_in(hub, name) for name in ("agent1", "agent2", "super1", "editor1", None)}
    yield made
    for client in made.values():
        await client.aclose()


async def test_canned_responses_over_http(clients: dict[str, httpx.AsyncClient]) -> None:
    zhang, li, boss = clients["agent1"], clients["agent2"], clients["super1"]
    anonymous = await clients["anonymous"].get("/api/handoff/canned")
    assert anonymous.status_code == 401 and anonymous.json()["reason"] == "请先登录。"
    editor = await clients["editor1"].get("/api/handoff/canned")
    assert editor.status_code == 403 and editor.json()["reason"] == "无权使用快捷回复。"

    seeded = (await zhang.get("/api/handoff/canned")).json()["items"]
    assert {i["shortcut"] for i in seeded} == {c["shortcut"] for c in DEMO_CANNED}
    assert all(i["scope"] == "shared" and not i["editable"] for i in seeded)

    # an agent keeps personal ones; shared ones are the supervisor's
    shortcut = f"z{uuid.uuid4().hex[:6]}"
    body = {"scope": "personal", "shortcut": shortcut, "title": "办结", "text": "{姓名}，您的事项已办结。"}
    created = await zhang.post("/api/handoff/canned", json=body)
    assert created.status_code == 201 and created.json()["editable"] is True
    item_id = created.json()["id"]
    refused = await zhang.post("/api/handoff/canned", json={**body, "scope": "shared", "shortcut": shortcut + "s"})
    assert refused.status_code == 403 and refused.json()["reason"] == "只有班长可以维护公共快捷回复。"
    bad = [
        ({**body, "shortcut": shortcut}, 409, "已被使用"),
        ({**body, "shortcut": shortcut + "x", "text": "您好{工号}"}, 400, "不支持的变量 {工号}"),
        ({**body, "shortcut": "带 空格"}, 400, "快捷码只能由"),
    ]
    for data, status, reason in bad:
        reply = await zhang.post("/api/handoff/canned", json=data)
        assert reply.status_code == status and reason in reply.json()["reason"]
    broken = await zhang.post("/api/handoff/canned", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["reason"] == "请求格式错误。"
    mine = [i for i in (await zhang.get("/api/handoff/canned")).json()["items"] if i["scope"] == "personal"]
    assert [i["shortcut"] for i in mine] == [shortcut]  # the refused ones left nothing
    assert shortcut not in {i["shortcut"] for i in (await li.get("/api/handoff/canned")).json()["items"]}

    # search; edit; someone else's is not found; delete
    assert [i["shortcut"] for i in (await zhang.get("/api/handoff/canned", params={"q": "办结"})).json()["items"]] == [
        shortcut
    ]
    assert (await li.put(f"/api/handoff/canned/{item_id}", json={"title": "改"})).status_code == 404
    edited = await zhang.put(f"/api/handoff/canned/{item_id}", json={"title": "已办结"})
    assert edited.status_code == 200 and edited.json()["title"] == "已办结"
    assert (await zhang.put(f"/api/handoff/canned/{item_id}", json={"text": " "})).json()[
        "reason"
    ] == "回复内容不能为空。"
    shared = await boss.post("/api/handoff/canned", json={**body, "scope": "shared", "shortcut": shortcut + "s"})
    assert shared.status_code == 201
    assert (await zhang.delete(f"/api/handoff/canned/{shared.json()['id']}")).status_code == 403
    assert (await boss.delete(f"/api/handoff/canned/{shared.json()['id']}")).status_code == 200
    assert (await zhang.delete(f"/api/handoff/canned/{item_id}")).status_code == 200
    assert (await zhang.delete(f"/api/handoff/canned/{item_id}")).status_code == 404


async def test_variables_are_filled_in_for_my_conversation(hub: ChannelHub, clients) -> None:
    zhang, li, boss = clients["agent1"], clients["agent2"], clients["super1"]
    today = datetime.now(ZoneInfo("Asia/Shanghai"))
    async with ChatClient(hub.url) as citizen, AgentClient(hub.url, "agent1", "agent1pass") as agent:
        await citizen.say("转人工")
        conv = citizen.conversation_id
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        assigned = await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)

        def rendered(reply: httpx.Response, shortcut: str) -> str:
            assert reply.status_code == 200, reply.text
            return next(i["rendered"] for i in reply.json()["items"] if i["shortcut"] == shortcut)

        params = {"conversation_id": conv, "q": "hi"}
        unknown = await zhang.get("/api/handoff/canned", params=params)
        assert rendered(unknown, "hi") == "市民朋友，您好！我是人工客服张敏，很高兴为您服务，请问有什么可以帮您？"
        citizen_id = assigned["screen_pop"]["citizen"]["id"]
        named = await zhang.patch(f"/api/crm/citizens/{citizen_id}", json={"name": "王小明"})
        assert named.status_code == 200
        known = await zhang.get("/api/handoff/canned", params={"conversation_id": conv, "q": "ticket"})
        day = f"{today.year}年{today.month}月{today.day}日"
        assert rendered(known, "ticket") == f"王小明，您的诉求已于{day}登记为工单，相关部门会在 1 个工作日内联系您。"
        # someone else's conversation: refused; a supervisor may (filled in with their own name)
        other = await li.get("/api/handoff/canned", params=params)
        assert other.status_code == 403 and other.json()["reason"] == "该会话不在您的接待列表中。"
        assert rendered(await boss.get("/api/handoff/canned", params=params), "hi").startswith(
            "王小明，您好！我是人工客服赵磊"
        )
        gone = await zhang.get("/api/handoff/canned", params={"conversation_id": str(uuid.uuid4())})
        assert gone.status_code == 404
        await agent.send({"type": "close", "conversation_id": conv})


async def test_a_citizens_image_reaches_the_console_and_only_staff_may_open_it(hub: ChannelHub, clients) -> None:
    async with ChatClient(hub.url) as citizen, AgentClient(hub.url, "agent2", "agent2pass") as agent:
        await citizen.say("转人工")
        conv = citizen.conversation_id
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        async with httpx.AsyncClient(base_url=hub.url, timeout=30) as http:
            sent = await http.post(
                "/api/web/upload",
                data={"visitor_id": citizen.visitor_id},
                files={"file": ("证件.png", PNG, "image/png")},
            )
        assert sent.status_code == 201
        shown = await agent.next_frame("message", where=lambda f: (f["message"]["meta"] or {}).get("attachment"))
        attachment = shown["message"]["meta"]["attachment"]
        assert attachment["name"] == "证件.png" and attachment["size"] == len(PNG) and attachment["type"] == "image/png"
        # nothing to suggest for an image
        await citizen.say("收到了吗")
        await agent.next_frame("assist", where=lambda f: f["text"] == "收到了吗")
        assert not [f for f in agent.frames if f["type"] == "assist" and f["message_id"] == shown["message"]["id"]]

        image = await clients["agent2"].get(attachment["url"])
        assert image.status_code == 200 and image.content == PNG and image.headers["content-type"] == "image/png"
        assert (await clients["super1"].get(attachment["url"])).status_code == 200
        for who in ("editor1", "anonymous"):
            refused = await clients[who].get(attachment["url"])
            assert refused.status_code == 404 and refused.json()["reason"] == "文件不存在或您无权查看。"
        await agent.send({"type": "close", "conversation_id": conv})

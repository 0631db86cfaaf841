"""The QA center on a real hub worker process (real Redis, real database, demo accounts; no Rasa:
转人工 hands off before the bot is asked): a served conversation is scored within 60 s of its close,
content review holds back a forbidden reply, an inspector sees numbers masked and inspects, the
agent appeals, a supervisor other than the inspector decides, every step is audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select

from core.db import make_engine, make_sessionmaker
from core.models import AuditLog
from tests.channels.telegram_fake import ChannelHub, start_channel_hubs, stop_channel_hubs
from tests.support import AgentClient, ChatClient, send_csrf_token


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    tmp = tmp_path_factory.mktemp("qa-http")
    env = {
        "RASA_URL": "http://127.0.0.1:9",
        "ZWKF_HANDOFF__WORKING_HOURS__ENABLED": "false",
        "ZWKF_QA__SWEEP_SECONDS": "1",
        "ZWKF_QA__CSAT_GRACE_SECONDS": "2",
    }
    hubs = start_channel_hubs(tmp, env, workers=1, log_name="qa-http")
    try:
        yield hubs
    finally:
        stop_channel_hubs(hubs)


async def logged_in(url: str, username: str | None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    if username:
        reply = await client.post("/api/login", json={"username": username, "password": f"{username}pass"})
        assert reply.status_code == 200
        send_csrf_token(client, reply)
    return client


@pytest.fixture
async def clients(hub: ChannelHub) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    made = {name or "anonymous": await logged_in(hub.url, name) for name in ("agent1", "agent2", "super1", "qa1",
                                                                             "editor1", None)}
    yield made
    for client in made.values():
        await client.aclose()


async def serve_one(hub: ChannelHub, replies: list[str]) -> tuple[str, list[dict]]:
    """A citizen asks for a person, agent1 takes it, says `replies`, closes. Returns the conversation
    and the error frames the agent got."""
    async with ChatClient(hub.url) as citizen, AgentClient(hub.url, "agent1", "agent1pass") as agent:
        await citizen.say("转人工")
        conv = citizen.conversation_id
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        await citizen.say("我的手机是13912345678，身份证530321199001011234，社保卡丢了怎么补办")
        errors = []
        for index, text in enumerate(replies):
            await agent.send({"type": "reply", "conversation_id": conv, "text": text, "client_id": f"c{index}"})
            frame = await agent.next_frame("ack", where=lambda f, i=index: f.get("client_id") == f"c{i}") \
                if "不知道" not in text else await agent.next_frame("error")
            if frame["type"] == "error":
                errors.append(frame)
        await agent.send({"type": "close", "conversation_id": conv, "disposition": "resolved"})
        await agent.next_frame("closed", where=lambda f: f["conversation_id"] == conv)
        # the citizen rates once the survey is on their screen, as a person would
        await citizen.next_frame("message", where=lambda f: (f["message"].get("meta") or {}).get("csat"))
        await citizen.send_frame({"type": "csat", "conversation_id": conv, "score": 2, "comment": "一般"})
        answer = await citizen.next_frame(where=lambda f: f["type"] in ("done", "error"))
        assert answer["type"] == "done", answer
        return conv, errors


async def item_for(client: httpx.AsyncClient, text: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await client.get("/api/qa/search", params={"q": text})
        assert found.status_code == 200, found.text
        if found.json()["items"]:
            return found.json()["items"][0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no QA item for {text} within {timeout} s")


async def test_score_inspect_appeal_decide(hub: ChannelHub, clients) -> None:
    agent, boss, inspector = clients["agent1"], clients["super1"], clients["qa1"]
    closed_at = time.monotonic()
    conv, errors = await serve_one(hub, [
        "这个我也不知道",  # held back by content review
        "请问有什么需要？",  # no greeting: a rule hit
        "携带身份证到社保窗口补办社保卡即可。",
        "感谢您的咨询，再见。",
    ])
    # content review: the reply with a forbidden word was not sent, and the warning names the word
    assert [e["code"] for e in errors] == ["forbidden_words"]
    assert "不知道" in errors[0]["reason"]
    found = await item_for(inspector, "社保窗口")
    assert time.monotonic() - closed_at < 60
    assert found["agent_name"] == "张敏"
    item = (await inspector.get(f"/api/qa/items/{found['item_id']}")).json()
    assert item["conversation_id"] == conv
    texts = [line["text"] for line in item["lines"]]
    assert not any("不知道" in t for t in texts)  # never stored, never sent
    # masked for the inspector, in full for the supervisor
    asked = next(t for t in texts if "社保卡丢了" in t)
    assert "13912345678" not in asked and "*******5678" in asked and "530321199001011234" not in asked
    full = (await boss.get(f"/api/qa/items/{found['item_id']}")).json()
    assert any("13912345678" in line["text"] for line in full["lines"])
    # the greeting rule hit points at the agent's first reply, and cost 5 points
    first_reply = next(line for line in item["lines"] if line["sender"] == "agent")
    assert [h["rule_id"] for h in first_reply["hits"]] == ["greeting"]
    assert item["csat"] == 2 and [h["rule_id"] for h in item["hits"] if h.get("message_id") is None] == ["low_csat"]
    assert item["auto_score"] == 85 and item["sheet"]["version"] == 1
    # an agent cannot inspect; the inspector submits the sheet with a comment on a message
    scores = {i["key"]: i["weight"] for i in item["sheet"]["items"]} | {"language": 25, "accuracy": 0, "handling": 20}
    refused = await agent.post(f"/api/qa/items/{item['id']}/inspection", json={"scores": scores})
    assert refused.status_code == 403
    bad = await inspector.post(f"/api/qa/items/{item['id']}/inspection", json={"scores": {**scores, "accuracy": 99}})
    assert bad.status_code == 400 and "解答准确" in bad.json()["reason"]
    done = await inspector.post(f"/api/qa/items/{item['id']}/inspection", json={
        "scores": scores, "comments": [{"message_id": first_reply["id"], "text": "缺少问候语"}], "note": "答复不完整",
    })
    assert done.status_code == 200, done.text
    assert done.json()["total"] == 75 and done.json()["passed"] is False
    # the agent sees it among their own, another agent may not open it
    mine = (await agent.get("/api/qa/mine")).json()["items"]
    assert any(m["item_id"] == item["id"] and m["score"] == 75 for m in mine)
    assert (await clients["agent2"].get(f"/api/qa/items/{item['id']}")).status_code == 403
    assert (await clients["agent2"].post(f"/api/qa/items/{item['id']}/appeal", json={"reason": "不服不服不服"})
            ).status_code == 403
    short = await agent.post(f"/api/qa/items/{item['id']}/appeal", json={"reason": "不服"})
    assert short.status_code == 400
    appealed = await agent.post(f"/api/qa/items/{item['id']}/appeal", json={"reason": "补办流程我已经说清楚了"})
    assert appealed.status_code == 200
    again = await agent.post(f"/api/qa/items/{item['id']}/appeal", json={"reason": "补办流程我已经说清楚了"})
    assert again.status_code == 409
    appeal_id = appealed.json()["appeal_id"]
    # the supervisor decides; the final score stands and nobody can inspect it again
    changed = {**scores, "accuracy": 20}
    decided = await boss.post(f"/api/qa/appeals/{appeal_id}/decision",
                              json={"decision": "change", "scores": changed, "note": "解答准确"})
    assert decided.status_code == 200, decided.text
    assert decided.json() == {"appeal_id": appeal_id, "status": "changed", "final_score": 95.0, "passed": True}
    assert (await boss.post(f"/api/qa/appeals/{appeal_id}/decision", json={"decision": "uphold"})).status_code == 409
    assert (await inspector.post(f"/api/qa/items/{item['id']}/inspection", json={"scores": scores})).status_code == 409
    final = (await agent.get(f"/api/qa/items/{item['id']}")).json()
    assert final["score"] == 95 and final["status"] == "final" and final["appeal"]["status"] == "changed"
    assert [i["kind"] for i in final["inspections"]] == ["inspection", "review"]
    # every step audited
    engine = make_engine(hub.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            actions = list((await session.execute(
                select(AuditLog.action).where(AuditLog.target == f"qa_item:{item['id']}").order_by(AuditLog.id)
            )).scalars())
    finally:
        await engine.dispose()
    assert [a for a in actions if a != "qa.view_item"] == ["qa.inspect", "qa.appeal", "qa.decide"]


async def test_rules_and_sheets_are_versioned_and_guarded(clients) -> None:
    boss, inspector = clients["super1"], clients["qa1"]
    current = (await inspector.get("/api/qa/rules")).json()["current"]
    rules = current["rules"]
    assert (await inspector.put("/api/qa/rules", json={"rules": rules})).status_code == 403
    assert (await clients["anonymous"].get("/api/qa/rules")).status_code == 401
    assert (await clients["editor1"].get("/api/qa/rules")).status_code == 403
    forbidden = next(r for r in rules if r["id"] == "forbidden")
    forbidden["words"] = [*forbidden["words"], "没空"]
    saved = await boss.put("/api/qa/rules", json={"rules": rules, "note": "加“没空”"})
    assert saved.status_code == 200 and saved.json()["version"] == current["version"] + 1
    screened = await clients["agent1"].post("/api/qa/screen", json={"text": "我现在没空"})
    assert [h["word"] for h in screened.json()["hits"]] == ["没空"]
    # a rule still used by the sheet cannot be dropped; a bad sheet is refused, nothing written
    dropped = await boss.put("/api/qa/rules", json={"rules": [r for r in rules if r["id"] != "greeting"]})
    assert dropped.status_code == 400 and "greeting" in dropped.json()["reason"]
    sheet = (await inspector.get("/api/qa/sheets")).json()["current"]
    bad = await boss.put("/api/qa/sheets", json={**sheet, "pass_mark": 500})
    assert bad.status_code == 400 and "及格分" in bad.json()["reason"]
    newer = await boss.put("/api/qa/sheets", json={**sheet, "pass_mark": 70, "name": "2027 版评分表"})
    assert newer.status_code == 200 and newer.json()["version"] == sheet["version"] + 1
    history = (await inspector.get("/api/qa/sheets")).json()["history"]
    assert [h["version"] for h in history][:2] == [sheet["version"] + 1, sheet["version"]]

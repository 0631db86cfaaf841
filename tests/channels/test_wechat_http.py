"""The WeChat channel over real HTTP: hub worker processes (one per mode, two in safe mode),
the fake WeChat API server, a fake Rasa, real Redis and a real database.

Database: SQLite by default, PostgreSQL with TEST_SYSTEM_DB=postgresql (like the `system` fixture).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from channels.wechat import WeChatConfig, open_push, plan_for
from core.config import load_settings
from core.db import make_engine
from core.models import Citizen, CitizenIdentity, Conversation, Message
from tests.channels.wechat_fake import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    SAMPLES,
    TOKEN,
    FakeRasa,
    FakeWeChat,
    Platform,
    RawHttp,
    message_xml,
    next_msg_id,
    openid,
)
from tests.support import (
    ROOT,
    TEST_REDIS_URL,
    free_port,
    start_hub,
    stop_process,
    system_database,
    unique_prefix,
)

MODES = ["plaintext", "compatible", "safe"]
BUDGET_MS = 2000  # generous for a loaded CI machine; the slow bot takes 3.5 s
PLATFORM = Platform()
LOG_DIR = ROOT / "var" / "test-logs"


@dataclass
class WeChatSystem:
    urls: dict[str, list[str]]  # mode -> hub worker URLs
    wechat: FakeWeChat
    rasa: FakeRasa
    database_url: str
    prefix: str


@pytest.fixture(scope="module")
def wx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeChatSystem]:
    with system_database(tmp_path_factory.mktemp("wechat")) as database_url:
        yield from _wechat_system(database_url)


def _wechat_system(database_url: str) -> Iterator[WeChatSystem]:
    wechat, rasa = FakeWeChat().start(), FakeRasa(slow_seconds=3.5).start()
    prefix = unique_prefix()
    common = {
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "RASA_URL": rasa.url,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
        "ZWKF_WECHAT__ENABLED": "true",
        "ZWKF_WECHAT__APP_ID": APP_ID,
        "ZWKF_WECHAT__APP_SECRET": APP_SECRET,
        "ZWKF_WECHAT__TOKEN": TOKEN,
        "ZWKF_WECHAT__ENCODING_AES_KEY": AES_KEY,
        "ZWKF_WECHAT__API_BASE_URL": wechat.url,
        "ZWKF_WECHAT__PASSIVE_REPLY_BUDGET_MS": str(BUDGET_MS),
    }
    hubs, urls = [], {}
    try:
        for mode, count in (("plaintext", 1), ("compatible", 1), ("safe", 2)):
            urls[mode] = []
            for index in range(count):
                port = free_port()
                env = {**common, "ZWKF_WECHAT__MODE": mode}
                hubs.append(start_hub(env, port, LOG_DIR / f"wechat-{mode}{index}.log"))
                urls[mode].append(f"http://127.0.0.1:{port}")
        yield WeChatSystem(urls, wechat, rasa, database_url, prefix)
    finally:
        for hub in hubs:
            stop_process(hub)
        wechat.stop()
        rasa.stop()


async def post(client: httpx.AsyncClient, url: str, query: dict[str, str], body: bytes) -> httpx.Response:
    return await client.post(url + "/wechat", params=query, content=body, headers={"Content-Type": "text/xml"})


async def rows(wx: WeChatSystem, **where: Any) -> list[Message]:
    engine = make_engine(wx.database_url)
    try:
        async with engine.connect() as conn:
            statement = select(Message).order_by(Message.id)
            if "user" in where:
                statement = statement.join(Conversation, Conversation.id == Message.conversation_id).where(
                    Conversation.channel == "wechat", Conversation.channel_user_id == where["user"]
                )
            if "ids" in where:
                statement = statement.where(Message.channel == "wechat", Message.channel_message_id.in_(where["ids"]))
            return list((await conn.execute(statement)).all())
    finally:
        await engine.dispose()


async def wait_for(predicate, seconds: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + seconds
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def passive(response: httpx.Response, query: dict[str, str]) -> dict[str, str]:
    assert response.status_code == 200, response.text
    assert response.text != "success", "expected a passive reply"
    return PLATFORM.open_reply(response.text, query)


# -- server URL and signatures ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_server_url_verification(wx: WeChatSystem, mode: str) -> None:
    async with httpx.AsyncClient() as client:
        ok = await client.get(wx.urls[mode][0] + "/wechat", params=PLATFORM.verification("echo_abc"))
        assert ok.status_code == 200 and ok.text == "echo_abc"
        bad = await client.get(wx.urls[mode][0] + "/wechat", params={**PLATFORM.verification(), "signature": "0" * 40})
        assert bad.status_code == 403


@pytest.mark.parametrize("mode", MODES)
async def test_a_bad_signature_is_403_and_nothing_is_stored(wx: WeChatSystem, mode: str) -> None:
    msg_id = next_msg_id()
    query, body = PLATFORM.push(message_xml("text", openid(), msg_id=msg_id, Content="伪造"), mode)
    forged = {**query, "signature": "a" * 40}
    async with httpx.AsyncClient() as client:
        response = await post(client, wx.urls[mode][0], forged, body)
        assert response.status_code == 403
        if mode != "plaintext":
            response = await post(client, wx.urls[mode][0], {**query, "msg_signature": "b" * 40}, body)
            assert response.status_code == 403
    assert await rows(wx, ids=[f"msg:{msg_id}"]) == []


async def test_oversized_and_entity_bodies_are_refused_and_nothing_is_stored(wx: WeChatSystem) -> None:
    user, msg_id = openid(), next_msg_id()
    big = message_xml("text", user, msg_id=msg_id, Content="长" * 30000).encode("utf-8")
    bomb = (
        '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        + message_xml("text", user, msg_id=next_msg_id(), Content="x").replace("<![CDATA[x]]>", "&b;")
    ).encode("utf-8")
    async with httpx.AsyncClient(timeout=10) as client:
        too_large = await post(client, wx.urls["plaintext"][0], PLATFORM.query(), big)
        assert too_large.status_code == 413
        entity = await post(client, wx.urls["plaintext"][0], PLATFORM.query(), bomb)
        assert entity.status_code == 400 and "格式" in entity.text
        query, body = PLATFORM.push(message_xml("text", user, msg_id=next_msg_id(), Content="x"), "plaintext")
        refused = await post(client, wx.urls["safe"][0], query, body)  # plaintext to a safe-mode server
        assert refused.status_code == 400
    assert await rows(wx, user=user) == []


# -- message types in each mode ---------------------------------------------------------------

MEDIA_REPLY = load_settings().get("bot.media_reply")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(SAMPLES))
async def test_each_message_type_in_each_mode(wx: WeChatSystem, mode: str, kind: str) -> None:
    user, msg_id = openid(), next_msg_id()
    query, body = PLATFORM.push(message_xml(kind, user, msg_id=msg_id, **SAMPLES[kind]), mode)
    async with httpx.AsyncClient(timeout=10) as client:
        response = await post(client, wx.urls[mode][0], query, body)
    reply = passive(response, query)
    stored = await rows(wx, user=user)
    citizen = [row for row in stored if row.sender == "citizen"]
    assert len(citizen) == 1 and citizen[0].channel_message_id == f"msg:{msg_id}"
    assert citizen[0].meta["kind"] == kind
    # the bot reads text and recognised voice; media get the fixed "please write it down" reply
    expected = MEDIA_REPLY if kind in {"image", "link", "location"} else f"收到：{citizen[0].text}"
    assert reply["Content"] == expected and reply["ToUserName"] == user
    if kind == "voice":
        assert citizen[0].text == "公积金怎么提取" and citizen[0].meta["media_id"] == "media_voice_1"
    if kind == "image":
        assert citizen[0].text == "[图片]" and citizen[0].meta["media_id"] == "media_image_1"
    assert [row.sender for row in stored] == ["citizen", "bot"]


async def test_events_subscribe_click_view_unsubscribe(wx: WeChatSystem) -> None:
    user = openid()
    wx.wechat.nicknames[user] = "王小明"
    wx.wechat.unionids[user] = "union_" + user[1:]
    url = wx.urls["safe"][0]
    now = int(time.time())
    async with httpx.AsyncClient(timeout=10) as client:
        query, body = PLATFORM.push(message_xml("event", user, created=now, Event="subscribe"), "safe")
        welcome = passive(await post(client, url, query, body), query)
        assert "欢迎关注" in welcome["Content"] and "菜单" in welcome["Content"]
        query, body = PLATFORM.push(
            message_xml("event", user, created=now + 1, Event="CLICK", EventKey="GUIDE_RESIDENCE_PERMIT"), "safe"
        )
        clicked = passive(await post(client, url, query, body), query)
        assert clicked["Content"] == "收到：居住证怎么办理"
        query, body = PLATFORM.push(
            message_xml("event", user, created=now + 2, Event="VIEW", EventKey="https://x.org"), "safe"
        )
        assert (await post(client, url, query, body)).text == "success"
        query, body = PLATFORM.push(message_xml("event", user, created=now + 3, Event="unsubscribe"), "safe")
        assert (await post(client, url, query, body)).text == "success"
    stored = await rows(wx, user=user)
    assert [(row.sender, row.meta.get("kind") or row.meta.get("event")) for row in stored] == [
        ("system", "subscribe"),
        ("bot", None),
        ("bot", None),
        ("citizen", "menu"),
        ("bot", None),
        ("system", "VIEW"),
        ("system", "unsubscribe"),
    ]
    assert stored[3].text == "居住证怎么办理" and stored[3].meta["menu_key"] == "GUIDE_RESIDENCE_PERMIT"

    async def profile() -> tuple[str | None, list[str]]:
        engine = make_engine(wx.database_url)
        try:
            async with engine.connect() as conn:
                conversation = (
                    await conn.execute(select(Conversation.citizen_id).where(Conversation.channel_user_id == user))
                ).scalar_one()
                name = (await conn.execute(select(Citizen.name).where(Citizen.id == conversation))).scalar_one()
                kinds = (
                    (await conn.execute(select(CitizenIdentity.kind).where(CitizenIdentity.citizen_id == conversation)))
                    .scalars()
                    .all()
                )
                return name, sorted(kinds)
        finally:
            await engine.dispose()

    found = await wait_for(lambda: _settled(profile, ("王小明", ["wechat_unionid", "wechat_user"])))
    assert found == ("王小明", ["wechat_unionid", "wechat_user"])


async def _settled(read, expected):
    value = await read()
    return value if value == expected else None


# -- the five-second rule -----------------------------------------------------------------------


async def test_a_retry_storm_gives_one_row_and_one_reply_across_workers(wx: WeChatSystem) -> None:
    user, msg_id = openid(), next_msg_id()
    query, body = PLATFORM.push(message_xml("text", user, msg_id=msg_id, Content="营业执照怎么办理"), "safe")
    workers = wx.urls["safe"]
    async with httpx.AsyncClient(timeout=10) as client:
        responses = await asyncio.gather(*(post(client, workers[i % 2], query, body) for i in range(3)))
    contents = {passive(response, query)["Content"] for response in responses}
    assert contents == {"收到：营业执照怎么办理"}
    stored = await rows(wx, user=user)
    assert [row.sender for row in stored] == ["citizen", "bot"]
    assert wx.wechat.sent_to(user) == []  # the one reply was the passive one


async def test_a_retry_storm_on_a_slow_bot_gives_one_api_reply(wx: WeChatSystem) -> None:
    """WeChat's real pattern: the first push, then retries while the bot is still thinking."""
    user, msg_id = openid(), next_msg_id()
    query, body = PLATFORM.push(message_xml("text", user, msg_id=msg_id, Content="慢慢说"), "safe")
    workers = wx.urls["safe"]
    async with httpx.AsyncClient(timeout=10) as client:

        async def retry(index: int) -> httpx.Response:
            await asyncio.sleep(index * 0.6)
            return await post(client, workers[index % 2], query, body)

        started = time.monotonic()
        responses = await asyncio.gather(*(retry(i) for i in range(3)))
        assert time.monotonic() - started < 5
    assert [response.text for response in responses] == ["success"] * 3
    sent = await wait_for(lambda: _nonempty(wx.wechat.sent_to(user)), seconds=8)
    await asyncio.sleep(0.5)
    assert sent == ["收到：慢慢说"] and wx.wechat.sent_to(user) == ["收到：慢慢说"]
    assert [row.sender for row in await rows(wx, user=user)] == ["citizen", "bot"]


async def _nonempty(value):
    return value or None


async def test_token_expiry_mid_conversation(wx: WeChatSystem) -> None:
    user = openid()
    url = wx.urls["safe"][1]
    async with httpx.AsyncClient(timeout=10) as client:
        query, body = PLATFORM.push(message_xml("text", user, Content="慢一点"), "safe")
        assert (await post(client, url, query, body)).text == "success"
        assert await wait_for(lambda: _nonempty(wx.wechat.sent_to(user)), seconds=8) == ["收到：慢一点"]
        fetches = wx.wechat.token_fetches
        wx.wechat.expire_tokens()
        query, body = PLATFORM.push(message_xml("text", user, Content="慢两点"), "safe")
        assert (await post(client, url, query, body)).text == "success"
        sent = await wait_for(
            lambda: _settled(lambda: _async(wx.wechat.sent_to(user)), ["收到：慢一点", "收到：慢两点"])
        )
    assert sent == ["收到：慢一点", "收到：慢两点"]
    assert wx.wechat.token_fetches == fetches + 1
    assert (("/cgi-bin/message/custom/send", 42001)) in wx.wechat.calls
    assert not [row for row in await rows(wx, user=user) if row.meta.get("delivery_error")]


async def _async(value):
    return value


async def test_a_closed_48_hour_window_is_shown_in_the_transcript(wx: WeChatSystem) -> None:
    user = openid()
    wx.wechat.close_window(user)
    query, body = PLATFORM.push(message_xml("text", user, Content="慢慢来"), "safe")
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await post(client, wx.urls["safe"][0], query, body)).text == "success"

    async def error_rows():
        return [row for row in await rows(wx, user=user) if row.meta.get("delivery_error")]

    errors = await wait_for(error_rows, seconds=8)
    assert len(errors) == 1 and errors[0].sender == "system" and errors[0].meta["delivery_error"] == 45015
    assert "48 小时" in errors[0].text
    stored = await rows(wx, user=user)
    assert [row.sender for row in stored] == ["citizen", "bot", "system"]
    assert errors[0].meta["message_id"] == stored[1].id


# -- hostile input --------------------------------------------------------------------------------


def _fuzz_bodies(rng: random.Random, users: list[str], count: int) -> list[tuple[str, str, bytes | str, str | None]]:
    """(mode, kind, body or inner xml, msg_id) — random bytes, broken XML, mutated real pushes."""
    junk_tags = [
        "<xml>",
        "</xml>",
        "<!DOCTYPE xml>",
        '<!ENTITY a "b">',
        "&a;",
        "<![CDATA[",
        "]]>",
        "<MsgId>",
        "\x00",
        "<?xml?>",
    ]
    out = []
    for _ in range(count):
        roll = rng.random()
        msg_id = next_msg_id()
        kind = rng.choice(["text", "voice", "image", "location", "link", "event", "weird"])
        fields = dict(SAMPLES.get(kind, {"Content": "x"}))
        if kind == "event":
            fields = {
                "Event": rng.choice(["subscribe", "CLICK", "VIEW", "unsubscribe", "LOCATION", "zzz"]),
                "EventKey": "K",
            }
        valid = message_xml(kind, rng.choice(users), msg_id=msg_id, **fields)
        if roll < 0.15:
            body: bytes | str = rng.randbytes(rng.randint(0, 600))
        elif roll < 0.3:
            body = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 300)))
        elif roll < 0.45:
            body = valid[: rng.randint(0, len(valid))]
        elif roll < 0.6:
            chars = list(valid)
            for _ in range(rng.randint(1, 8)):
                chars[rng.randrange(len(chars))] = rng.choice("<>&/\"'x\x01中]")
            body = "".join(chars)
        elif roll < 0.72:
            pieces = valid.split("><")
            position = rng.randrange(len(pieces))
            pieces.insert(position, rng.choice(junk_tags).strip("<>"))
            body = "><".join(pieces)
        elif roll < 0.8:
            body = f'<!DOCTYPE xml [<!ENTITY e "{"x" * 50}"><!ENTITY f "&e;&e;&e;&e;">]>' + valid.replace(
                "居住证", "&f;"
            )
        elif roll < 0.86:
            body = "<xml>" + "<a>" * rng.randint(5, 400) + "</xml>"
        elif roll < 0.92:
            drop = rng.choice(["FromUserName", "MsgType", "CreateTime", "MsgId", "Content"])
            body = valid.replace(f"<{drop}>", "<Other>").replace(f"</{drop}>", "</Other>")
        else:
            body = valid  # some must be valid: they are stored completely or not at all
        mode = "safe" if rng.random() < 0.25 else "plaintext"
        out.append((mode, kind, body, msg_id))
    return out


async def test_ten_thousand_random_and_malformed_bodies(wx: WeChatSystem) -> None:
    rng = random.Random(20261125)
    users = [openid() for _ in range(8)]
    cases = _fuzz_bodies(rng, users, 10_000)
    statuses: dict[str, int] = {}
    counts: dict[int, int] = {}
    busy: dict[str, tuple[str, dict[str, str], bytes]] = {}
    started = time.monotonic()
    queue: asyncio.Queue[tuple[int, str, bytes | str, str]] = asyncio.Queue()
    for index, (mode, _kind, body, msg_id) in enumerate(cases):
        queue.put_nowait((index, mode, body, msg_id))

    async def worker() -> None:
        connections: dict[str, RawHttp] = {}
        try:
            while not queue.empty():
                index, mode, body, msg_id = queue.get_nowait()
                if mode == "safe" and isinstance(body, str):
                    query, raw = PLATFORM.encrypted_raw(body)  # garbage inside a correctly signed envelope
                else:
                    query = PLATFORM.query()
                    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
                    if index % 50 == 0:
                        query["signature"] = f"{rng.getrandbits(160):040x}"
                url = wx.urls[mode][index % len(wx.urls[mode])]
                connection = connections.setdefault(url, RawHttp(url))
                status, _body = await connection.post("/wechat", query, raw)
                statuses[msg_id] = status
                counts[status] = counts.get(status, 0) + 1
                if status >= 500:
                    busy[msg_id] = (mode, query, raw)
        finally:
            for connection in connections.values():
                await connection.close()

    await asyncio.gather(*(worker() for _ in range(32)))
    elapsed = time.monotonic() - started
    print(f"fuzz: {len(cases)} bodies in {elapsed:.1f}s, statuses {counts}")
    # malformed input is never a 5xx; the only 5xx allowed is 503 for a well-formed push whose row
    # was not committed within WeChat's five seconds on an overloaded machine (WeChat then retries)
    assert set(counts) <= {200, 400, 403, 413, 503}, counts
    for msg_id, (mode, query, raw) in busy.items():
        config = WeChatConfig.from_tree(
            {"enabled": True, "app_id": APP_ID, "token": TOKEN, "encoding_aes_key": AES_KEY, "mode": mode}
        )
        push = open_push(config, query, raw, now=float(query["timestamp"]))  # raises if it was malformed
        assert plan_for(config, push).kind != "ignore", msg_id
    assert counts.get(503, 0) <= 50, counts
    assert counts.get(200, 0) > 100 and counts.get(400, 0) > 3000  # the generator reaches both sides

    stored = await rows(wx, ids=[f"msg:{msg_id}" for msg_id in statuses])
    for row in stored:  # complete rows only, and only for pushes that were accepted (or will be retried)
        msg_id = row.channel_message_id.removeprefix("msg:")
        assert statuses[msg_id] in (200, 503), f"{msg_id} stored although answered {statuses[msg_id]}"
        assert row.sender == "citizen" and row.text and row.meta.get("kind")
    rejected = {msg_id for msg_id, status in statuses.items() if status not in (200, 503)}
    assert not rejected & {row.channel_message_id.removeprefix("msg:") for row in stored}
    assert elapsed < 60

"""Handoff triggers, routing, auto-assignment, presence, waiting, 留言, transfer, close and CSAT,
against a real Redis and each real database (the in-process Dispatcher; Rasa stubbed by a
table that runs the hub's own actions)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from core.config import Settings
from core.events import Event, MessageEvent, StateEvent, WhisperEvent
from core.models import Conversation, CsatRating, Ticket
from handoff import HandoffError, Owner
from tests.handoff.helpers import FakeEntry, Hub, make_hub

SH = ZoneInfo("Asia/Shanghai")
AUTO = {"handoff.auto_assign": True}


@pytest.fixture
async def hub(settings: Settings, redis_client: aioredis.Redis):
    made = await make_hub(settings, redis_client)
    yield made
    await made.close()


@pytest.fixture
async def auto_hub(settings: Settings, redis_client: aioredis.Redis):
    made = await make_hub(settings, redis_client, AUTO)
    yield made
    await made.close()


# ---------------------------------------------------------------------------------------- triggers


async def test_keyword_hands_off_before_the_bot_is_asked(hub: Hub) -> None:
    conv = await hub.citizen_writes("v-kw", "你好，帮我找真人")
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED
    assert hub.rasa.asked == []  # the bot never saw it
    events = await hub.events(conv.id)
    assert [(e.kind, e.data.get("reason")) for e in events] == [("request_human", "keyword")]
    texts = [m.text for m in await hub.messages(conv.id)]
    assert any("排队第 1 位" in t for t in texts)


async def test_anger_words_hand_off(hub: Hub) -> None:
    conv = await hub.citizen_writes("v-angry", "你们这什么破系统，气死我了")
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED
    assert (await hub.events(conv.id))[0].data["reason"] == "anger"


async def test_a_flagged_citizen_is_handed_off_on_the_first_message_only(hub: Hub) -> None:
    conv = await hub.conversation("v-vip")
    await hub.tag_citizen(conv.citizen_id, ["重点关注"])
    await hub.citizen_writes("v-vip", "你好")
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED
    assert (await hub.events(conv.id))[0].data["reason"] == "flagged_citizen"
    # back with the bot, the next message is the bot's again
    await hub.ownership.apply(conv.id, "cancel_queue", actor="citizen")
    await hub.citizen_writes("v-vip", "居住证怎么办")
    assert (await hub.ownership.state(conv.id)).owner == Owner.BOT
    assert hub.rasa.asked == ["居住证怎么办"]


async def test_a_citizen_marked_for_attention_in_the_crm_is_handed_off(hub: Hub) -> None:
    conv = await hub.conversation("v-marked")
    await hub.citizens.update(conv.citizen_id, flagged=True)  # 重点关注 ticked in 客户信息
    await hub.citizen_writes("v-marked", "你好")
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED
    assert (await hub.events(conv.id))[0].data["reason"] == "flagged_citizen"
    assert hub.rasa.asked == []


async def test_after_a_crm_merge_live_state_and_last_agent_follow_the_survivor(hub: Hub) -> None:
    conv = await hub.conversation("v-merge-old")
    keep = await hub.conversation("v-merge-keep")
    await hub.citizen_writes("v-merge-old", "你好")
    key = hub.keys.conversation(conv.id)
    assert await hub.redis.hget(key, "citizen_id") in (None, str(conv.citizen_id))
    await hub.redis.set(hub.keys.prefix + f"handoff:last_agent:{conv.citizen_id}", 7)
    await hub.handoff.citizen_merged(keep.citizen_id, conv.citizen_id, [conv.id, "no-such-conversation"])
    assert await hub.redis.hget(key, "citizen_id") == str(keep.citizen_id)
    assert await hub.redis.get(hub.keys.prefix + f"handoff:last_agent:{keep.citizen_id}") == "7"
    assert not await hub.redis.exists(hub.keys.conversation("no-such-conversation"))  # nothing half-made


async def test_an_untagged_citizen_goes_to_the_bot(hub: Hub) -> None:
    conv = await hub.citizen_writes("v-plain", "你好")
    assert (await hub.ownership.state(conv.id)).owner == Owner.BOT
    assert hub.rasa.asked == ["你好"]


async def test_fallbacks_in_a_row_hand_off(hub: Hub) -> None:
    await hub.citizen_writes("v-fb", "火星上的土豆好吃吗")
    conv = await hub.citizen_writes("v-fb", "宇宙的尽头是什么颜色")
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED
    assert (await hub.events(conv.id))[0].data["reason"] == "kb_declined"


async def test_a_kb_entry_marked_always_hand_off_answers_then_hands_off(hub: Hub) -> None:
    hub.answers.known["我要申请低保"] = ("E9", "社会救助", "低保申请需要……")
    hub.kb.entries["E9"] = FakeEntry(["低保", "#转人工"])
    hub.answers.known["居住证怎么办"] = ("D001", "居住证", "请携带身份证……")
    hub.kb.entries["D001"] = FakeEntry(["居住证"])
    conv = await hub.citizen_writes("v-kbm", "居住证怎么办")
    assert (await hub.ownership.state(conv.id)).owner == Owner.BOT
    await hub.citizen_writes("v-kbm", "我要申请低保")
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED
    lines = [(m.sender, m.text) for m in await hub.messages(conv.id)]
    answer = lines.index(("bot", "低保申请需要……"))
    assert lines[answer + 1][0] == "system" and "排队" in lines[answer + 1][1]  # the answer first, then the queue
    assert (await hub.events(conv.id))[0].data["reason"] == "kb_entry"


async def test_complaint_intent_routes_to_its_group(hub: Hub) -> None:
    hub.rasa.intents["我要投诉"] = "complaint"
    conv = await hub.citizen_writes("v-complaint", "我要投诉")
    state = await hub.ownership.state(conv.id)
    assert (state.owner, state.group) == (Owner.QUEUED, "综合")
    assert (await hub.events(conv.id))[0].data.items() >= {"reason": "complaint", "intent": "complaint"}.items()


# ---------------------------------------------------------------------------------------- routing


async def test_last_kb_branch_picks_the_group_when_a_member_is_signed_in(hub: Hub) -> None:
    hub.answers.known["公积金怎么提取"] = ("D030", "公积金", "提取公积金……")
    conv = await hub.citizen_writes("v-branch", "公积金怎么提取")
    assert await hub.redis.hget(hub.keys.conversation(conv.id), "last_branch") == "公积金"
    # nobody of 社保 signed in: the handoff overflows to the default group
    await hub.citizen_writes("v-branch", "转人工")
    assert (await hub.ownership.state(conv.id)).group == "综合"

    await hub.handoff.connect(hub.users["agent1"])  # 社保's member
    hub.answers.known["医保怎么报销"] = ("D040", "医保", "医保报销……")
    other = await hub.citizen_writes("v-branch2", "医保怎么报销")
    await hub.citizen_writes("v-branch2", "转人工")
    assert (await hub.ownership.state(other.id)).group == "社保"


# ---------------------------------------------------------------------------------------- assignment


async def _queue(hub: Hub, visitor: str) -> str:
    conv = await hub.citizen_writes(visitor, "转人工")
    return conv.id


async def test_auto_assign_longest_idle_first_and_the_citizen_hears_who(auto_hub: Hub) -> None:
    hub = auto_hub
    for name in ("agent3", "agent4"):
        await hub.handoff.connect(hub.users[name])
    await hub.redis.hset(hub.handoff.presence_key(hub.users["agent3"].id), "last_assigned", time.time())
    await hub.redis.hset(hub.handoff.presence_key(hub.users["agent4"].id), "last_assigned", time.time() - 600)
    conv = await _queue(hub, "v-idle")
    state = await hub.ownership.state(conv)
    assert (state.owner, state.agent_id) == (Owner.AGENT, hub.users["agent4"].id)  # idle the longest
    texts = [m.text for m in await hub.messages(conv)]
    assert any("坐席4 已接入" in t for t in texts)
    assert [e.kind for e in await hub.events(conv)] == ["request_human", "assign"]
    assert (await hub.events(conv))[1].data["auto"] is True


async def test_least_busy_and_last_agent_first(settings: Settings, redis_client: aioredis.Redis) -> None:
    groups = {
        "综合": {"agents": ["*"], "strategy": "least_busy"},
        "社保": {"agents": ["agent1", "agent2"], "strategy": "last_agent"},
    }
    hub = await make_hub(settings, redis_client, {**AUTO, "handoff.groups": groups, "handoff.routes": {"社保": "社保"}})
    try:
        a1, a2 = hub.users["agent1"], hub.users["agent2"]
        for user in (a1, a2):
            await hub.handoff.connect(user)
        first = await _queue(hub, "v-lb1")
        second = await _queue(hub, "v-lb2")
        owners = {(await hub.ownership.state(c)).agent_id for c in (first, second)}
        assert owners == {a1.id, a2.id}  # least busy: one each

        # last-agent-first: the citizen served by agent2 comes back to agent2 even though agent1 is freer
        served_by = (await hub.ownership.state(second)).agent_id
        await hub.handoff.close(await hub.conversations.get(second), served_by)
        await hub.handoff.close(await hub.conversations.get(first), (await hub.ownership.state(first)).agent_id)
        extra = await _queue(hub, "v-lb3")  # keeps the other agent the less busy one
        hub.answers.known["社保卡怎么办"] = ("S1", "社保", "社保卡……")
        again = await hub.citizen_writes("v-lb2", "社保卡怎么办")
        await hub.citizen_writes("v-lb2", "转人工")
        state = await hub.ownership.state(again.id)
        assert state.group == "社保" and state.agent_id == served_by
        assert (await hub.ownership.state(extra)).owner == Owner.AGENT
    finally:
        await hub.close()


async def test_busy_and_away_agents_get_nothing_and_coming_online_drains(auto_hub: Hub) -> None:
    hub = auto_hub
    a5 = hub.users["agent5"]
    await hub.handoff.connect(a5)
    await hub.handoff.set_presence(a5.id, "busy")
    conv = await _queue(hub, "v-busy")
    assert (await hub.ownership.state(conv)).owner == Owner.QUEUED
    await hub.handoff.set_presence(a5.id, "away")
    assert (await hub.ownership.state(conv)).owner == Owner.QUEUED
    with pytest.raises(HandoffError):
        await hub.handoff.set_presence(a5.id, "offline")  # only the sweeper sets offline
    await hub.handoff.set_presence(a5.id, "online")
    assert (await hub.ownership.state(conv)).agent_id == a5.id


async def test_capacity_is_never_exceeded_and_freeing_a_slot_assigns_the_next(auto_hub: Hub) -> None:
    hub = auto_hub
    capacity = hub.handoff.config.capacity
    a6 = hub.users["agent6"]
    await hub.handoff.connect(a6)
    convs = await asyncio.gather(*[_queue(hub, f"v-cap{i}") for i in range(capacity + 3)])
    assert len(await hub.ownership.agent_conversations(a6.id)) == capacity
    waiting = [c for c in convs if (await hub.ownership.state(c)).owner == Owner.QUEUED]
    assert len(waiting) == 3
    mine = sorted(await hub.ownership.agent_conversations(a6.id))
    await hub.handoff.return_to_bot(await hub.conversations.get(mine[0]), a6.id)
    assert len(await hub.ownership.agent_conversations(a6.id)) == capacity
    assert sum([(await hub.ownership.state(c)).owner == Owner.QUEUED for c in waiting]) == 2


async def test_manual_accept_still_works_in_pooled_mode(hub: Hub) -> None:
    a2 = hub.users["agent2"]
    await hub.handoff.connect(a2)
    conv = await _queue(hub, "v-manual")
    assert (await hub.ownership.state(conv)).owner == Owner.QUEUED  # pooled (the shipped default)
    await hub.handoff.accept(await hub.conversations.get(conv), a2)
    assert (await hub.ownership.state(conv)).agent_id == a2.id
    with pytest.raises(HandoffError) as taken:
        await hub.handoff.accept(await hub.conversations.get(conv), hub.users["agent3"])
    assert taken.value.code == "taken"


# ---------------------------------------------------------------------------------------- presence


async def test_silent_agent_goes_offline_and_their_conversations_go_to_the_front(auto_hub: Hub) -> None:
    hub = auto_hub
    a7 = hub.users["agent7"]
    await hub.handoff.connect(a7)
    served = await _queue(hub, "v-off1")
    assert (await hub.ownership.state(served)).agent_id == a7.id
    await hub.handoff.set_presence(a7.id, "away")
    waiting = await _queue(hub, "v-off2")  # queued before the agent drops
    assert await hub.ownership.queue_position(waiting, "综合") == 1

    await hub.handoff.sweep()  # the heartbeat is fresh: nothing happens
    assert (await hub.ownership.state(served)).agent_id == a7.id
    await hub.redis.hset(hub.handoff.presence_key(a7.id), "last_seen", time.time() - 60)
    await hub.handoff.sweep()
    await hub.handoff.sweep()  # idempotent
    assert (await hub.handoff.presence(a7.id))["status"] == "offline"
    assert (await hub.ownership.state(served)).owner == Owner.QUEUED
    assert await hub.ownership.queue_position(served, "综合") == 1  # ahead of the one who was waiting
    assert await hub.ownership.queue_position(waiting, "综合") == 2
    kinds = [e.kind for e in await hub.events(served)]
    assert kinds.count("requeue") == 1
    # the agent comes back: a heartbeat puts them online and the front of the queue is theirs again
    await hub.handoff.heartbeat(a7.id)
    assert (await hub.ownership.state(served)).agent_id == a7.id


async def test_sweeper_lock_lets_one_worker_sweep_per_interval(hub: Hub, redis_client: aioredis.Redis) -> None:
    other = await make_hub(hub.settings, redis_client, seed_users=False)
    try:
        swept: list[str] = []

        async def fake_sweep(name: str) -> None:
            swept.append(name)

        hub.handoff.sweep = lambda: fake_sweep("a")  # type: ignore[method-assign]
        other.handoff.sweep = lambda: fake_sweep("b")  # type: ignore[method-assign]
        await asyncio.gather(hub.handoff.tick(), other.handoff.tick())
        assert len(swept) == 1
    finally:
        await other.close()


# ---------------------------------------------------------------------------------------- waiting


async def test_state_frame_has_position_and_eta(hub: Hub) -> None:
    first = await _queue(hub, "v-eta1")
    second = await _queue(hub, "v-eta2")
    frame = await hub.handoff.state_frame(second)
    handle = hub.handoff.config.default_handle_seconds
    assert frame["owner"] == "queued" and frame["queue_position"] == 2
    assert frame["eta_seconds"] == 2 * handle  # nobody online: one slot
    await hub.handoff.connect(hub.users["agent1"])
    capacity = hub.handoff.config.capacity
    assert (await hub.handoff.state_frame(second))["eta_seconds"] == round(2 * handle / capacity / 5) * 5
    await hub.redis.hset(f"{hub.keys.prefix}handoff:stats:综合", "handle_avg", 100)
    assert (await hub.handoff.state_frame(first))["eta_seconds"] == 20
    bot = await hub.handoff.state_frame((await hub.citizen_writes("v-eta3", "你好")).id)
    assert bot["owner"] == "bot" and bot["queue_position"] is None and bot["eta_seconds"] is None


async def test_long_waiters_are_offered_to_leave_a_message_once(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    hub = await make_hub(settings, redis_client, {"handoff.offer_message_after_seconds": 0})
    try:
        conv = await _queue(hub, "v-offer")
        await hub.handoff.sweep()
        await hub.handoff.sweep()
        offers = [m for m in await hub.messages(conv) if m.meta.get("offer_leave_message")]
        assert len(offers) == 1 and "留言" in offers[0].text
    finally:
        await hub.close()


async def test_leaving_a_message_makes_a_ticket_and_leaves_the_queue(hub: Hub) -> None:
    conv = await hub.conversation("v-ticket")
    await _queue(hub, "v-ticket")
    result = await hub.dispatcher.leave_message(conv, "  我的社保卡一直没寄到，请回电 138****  ")
    assert (await hub.ownership.state(conv.id)).owner == Owner.BOT
    async with hub.sessions() as session:
        ticket = (await session.execute(select(Ticket).where(Ticket.id == result["ticket_id"]))).scalar_one()
    assert ticket.status == "open" and ticket.conversation_id == conv.id and ticket.citizen_id == conv.citizen_id
    assert ticket.body.startswith("我的社保卡") and ticket.group == "综合"
    assert abs((ticket.due_at - ticket.created_at) - timedelta(hours=24)) < timedelta(seconds=1)
    kinds = [e.kind for e in await hub.events(conv.id)]
    assert kinds == ["request_human", "ticket_created", "cancel_queue"]
    last = (await hub.messages(conv.id))[-1]
    assert last.meta["ticket_id"] == ticket.id and str(ticket.id) in last.text
    for bad, code in (("   ", "empty"), ("长" * 1001, "too_long")):
        with pytest.raises(HandoffError) as refused:
            await hub.dispatcher.leave_message(conv, bad)
        assert refused.value.code == code


# ---------------------------------------------------------------------------------------- working hours


async def test_outside_hours_on_a_holiday_the_citizen_hears_when_and_may_leave_a_message(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    hub = await make_hub(settings, redis_client, {"handoff.working_hours.enabled": True})
    try:
        hub.at(datetime(2025, 10, 2, 10, 0, tzinfo=SH))  # National Day holiday
        conv = await hub.citizen_writes("v-holiday", "转人工")
        assert (await hub.ownership.state(conv.id)).owner == Owner.BOT  # nothing queued
        last = (await hub.messages(conv.id))[-1]
        assert last.sender == "system" and last.meta["offer_leave_message"] and last.meta["off_hours"]
        assert "国庆节" in last.text and "10月9日（周四）08:30" in last.text
        await hub.dispatcher.leave_message(conv, "节后请联系我办理户口迁移")
        async with hub.sessions() as session:
            assert len((await session.execute(select(Ticket))).scalars().all()) == 1

        hub.at(datetime(2025, 10, 11, 10, 0, tzinfo=SH))  # 调休 Saturday, in hours
        other = await hub.citizen_writes("v-saturday", "转人工")
        assert (await hub.ownership.state(other.id)).owner == Owner.QUEUED
        hub.at(datetime(2025, 10, 18, 10, 0, tzinfo=SH))  # an ordinary Saturday
        third = await hub.citizen_writes("v-weekend", "转人工")
        assert (await hub.ownership.state(third.id)).owner == Owner.BOT
        assert "10月20日（周一）08:30" in (await hub.messages(third.id))[-1].text
    finally:
        await hub.close()


# ---------------------------------------------------------------------------------------- transfer, close, CSAT


async def test_transfer_with_memo_close_with_disposition_and_a_rating_that_survives(hub: Hub) -> None:
    a1, a2 = hub.users["agent1"], hub.users["agent2"]
    for user in (a1, a2):
        await hub.handoff.connect(user)
    conv = await hub.conversation("v-transfer")
    await _queue(hub, "v-transfer")
    await hub.handoff.accept(conv, a1)

    with pytest.raises(HandoffError) as not_yours:
        await hub.handoff.transfer(conv, a2.id, to_agent="agent1")
    assert not_yours.value.code == "not_yours"
    await hub.handoff.set_presence(a2.id, "away")
    with pytest.raises(HandoffError) as away:
        await hub.handoff.transfer(conv, a1.id, to_agent="agent2")
    assert away.value.code == "agent_unavailable"
    await hub.handoff.set_presence(a2.id, "online")
    await hub.handoff.transfer(conv, a1.id, to_agent="agent2", memo="市民问社保转移，已核实身份")
    state = await hub.ownership.state(conv.id)
    assert (state.owner, state.agent_id) == (Owner.AGENT, a2.id)
    assert await hub.ownership.agent_conversations(a1.id) == set()
    assert await hub.handoff.memo(conv.id) == {"text": "市民问社保转移，已核实身份", "from": "坐席1"}
    transfer = [e for e in await hub.events(conv.id) if e.kind == "transfer"][0]
    assert transfer.data["memo"] == "市民问社保转移，已核实身份" and transfer.data["previous_agent_id"] == a1.id

    # CSAT is not open before the close
    with pytest.raises(HandoffError) as early:
        await hub.dispatcher.rate(conv.id, 5, channel_user_id="v-transfer")
    assert early.value.code == "not_offered"
    with pytest.raises(HandoffError):
        await hub.handoff.close(conv, a2.id, "made_up")
    await hub.handoff.close(conv, a2.id, "resolved", "已告知社保转移流程")
    async with hub.sessions() as session:
        row = await session.get(Conversation, conv.id)
        assert (row.status, row.disposition, row.summary) == ("closed", "resolved", "已告知社保转移流程")
    csat = [m for m in await hub.messages(conv.id) if m.meta.get("csat")]
    assert len(csat) == 1 and csat[0].meta["conversation_id"] == conv.id and csat[0].sender == "system"

    for score in (0, 6, "5", True):
        with pytest.raises(HandoffError) as bad:
            await hub.dispatcher.rate(conv.id, score, channel_user_id="v-transfer")
        assert bad.value.code == "bad_score"
    with pytest.raises(HandoffError) as stranger:
        await hub.dispatcher.rate(conv.id, 5, channel_user_id="someone-else")
    assert stranger.value.code == "not_found"
    await hub.dispatcher.rate(conv.id, 3, "一般", channel_user_id="v-transfer")
    await hub.dispatcher.rate(conv.id, 5, "第二位坐席很专业", channel_user_id="v-transfer")  # the latest wins
    async with hub.sessions() as session:
        ratings = (await session.execute(select(CsatRating))).scalars().all()
    assert len(ratings) == 1
    rating = ratings[0]
    assert (rating.score, rating.comment, rating.agent_id) == (5, "第二位坐席很专业", a2.id)
    assert sorted(int(a) for a in rating.agent_ids) == [a1.id, a2.id]  # both who served it


async def test_transfer_to_a_group_goes_to_the_front_of_its_queue(hub: Hub) -> None:
    a3 = hub.users["agent3"]
    await hub.handoff.connect(a3)
    waiting = await _queue(hub, "v-tg1")
    await hub.ownership.apply(waiting, "cancel_queue", actor="citizen")
    await hub.ownership.apply(waiting, "request_human", actor="bot", group="户籍")
    conv = await hub.conversation("v-tg2")
    await _queue(hub, "v-tg2")
    await hub.handoff.accept(conv, a3)
    await hub.handoff.transfer(conv, a3.id, to_group="户籍", memo="户口迁移问题")
    state = await hub.ownership.state(conv.id)
    assert (state.owner, state.group) == (Owner.QUEUED, "户籍")
    assert await hub.ownership.queue_position(conv.id, "户籍") == 1
    assert await hub.ownership.queue_position(waiting, "户籍") == 2
    with pytest.raises(HandoffError):
        await hub.handoff.transfer(conv, a3.id, to_group="不存在")


async def test_return_to_bot_only_by_the_owner(hub: Hub) -> None:
    a4 = hub.users["agent4"]
    conv = await hub.conversation("v-rtb")
    await _queue(hub, "v-rtb")
    await hub.handoff.accept(conv, a4)
    with pytest.raises(HandoffError):
        await hub.handoff.return_to_bot(conv, hub.users["agent5"].id)
    await hub.handoff.return_to_bot(conv, a4.id)
    assert (await hub.ownership.state(conv.id)).owner == Owner.BOT


async def test_supervisor_board(auto_hub: Hub) -> None:
    hub = auto_hub
    await hub.handoff.connect(hub.users["agent8"])
    await hub.handoff.connect(hub.users["super1"])
    assigned = await _queue(hub, "v-board1")
    await hub.handoff.set_presence(hub.users["agent8"].id, "busy")
    await _queue(hub, "v-board2")
    board = await hub.handoff.board()
    queue = next(q for q in board["queues"] if q["group"] == "综合")
    assert queue["waiting"] == 1
    agent8 = next(a for a in board["agents"] if a["username"] == "agent8")
    assert (agent8["status"], agent8["load"], agent8["conversations"]) == ("busy", 1, [assigned])
    assert queue["avg_wait_seconds"] is not None


async def test_whisper_never_reaches_the_citizen_and_take_over(hub: Hub) -> None:
    sent: list[str] = []

    class Capture:
        name = "web"

        async def send(self, channel_user_id: str, message: object) -> None:
            sent.append(message.text)  # type: ignore[attr-defined]

    hub.dispatcher.register_channel(Capture())  # type: ignore[arg-type]
    events: list[Event] = []

    async def collect(event: Event) -> None:
        events.append(event)

    hub.bus.subscribe(collect)
    await hub.bus.start()
    try:
        a1, boss = hub.users["agent1"], hub.users["super1"]
        conv = await hub.conversation("v-whisper")
        await _queue(hub, "v-whisper")
        await hub.handoff.accept(conv, a1)
        message = await hub.handoff.whisper(conv, boss, "注意核实身份后再告知进度")
        assert message.meta["whisper"] is True and message.sender_name == boss.display_name
        assert "注意核实身份后再告知进度" not in sent  # no channel delivered it
        with pytest.raises(HandoffError):
            await hub.handoff.whisper(conv, boss, "  ")
        await hub.handoff.take_over(conv, boss)
        state = await hub.ownership.state(conv.id)
        assert (state.owner, state.agent_id) == (Owner.AGENT, boss.id)
        assert await hub.ownership.agent_conversations(a1.id) == set()
        for _ in range(100):
            if any(isinstance(e, StateEvent) and e.transition == "transfer" for e in events):
                break
            await asyncio.sleep(0.02)
        whispers = [e for e in events if isinstance(e, WhisperEvent)]
        assert len(whispers) == 1 and whispers[0].agent_id == a1.id
        assert not [e for e in events if isinstance(e, MessageEvent) and e.message["meta"].get("whisper")]
        take = [e for e in events if isinstance(e, StateEvent) and e.transition == "transfer"]
        assert take and take[0].data["take_over"] is True and take[0].previous_agent_id == a1.id
    finally:
        await hub.bus.stop()


# ------------------------------------------------------------------- supervisor: take over, watch


async def test_a_supervisor_takes_over_a_waiting_conversation(hub: Hub) -> None:
    boss = hub.users["super1"]
    conv = await hub.conversation("v-take-waiting")
    await _queue(hub, "v-take-waiting")
    assert (await hub.ownership.state(conv.id)).owner == Owner.QUEUED
    outcome = await hub.handoff.take_over(conv, boss)
    state = await hub.ownership.state(conv.id)
    assert (state.owner, state.agent_id) == (Owner.AGENT, boss.id)
    assert await hub.ownership.queue_position(conv.id, "综合") is None  # out of the queue
    assert outcome == {"load": 1, "capacity": hub.handoff.config.capacity, "over_capacity": False}
    events = await hub.events(conv.id)
    assert [(e.kind, e.actor, e.data.get("take_over")) for e in events][-1] == ("assign", f"supervisor:{boss.id}", True)
    texts = [m.text for m in await hub.messages(conv.id)]
    assert any(boss.display_name in t and "接入" in t for t in texts)  # the citizen hears who took it
    queue = next(q for q in (await hub.handoff.board())["queues"] if q["group"] == "综合")
    assert queue["avg_wait_seconds"] is not None  # a wait like any other
    with pytest.raises(HandoffError) as refused:  # already theirs
        await hub.handoff.take_over(conv, boss)
    assert refused.value.code == "bad_field"


async def test_take_over_is_not_held_back_by_the_supervisors_capacity_but_accepting_is(hub: Hub) -> None:
    """A supervisor taking over is deliberate: it goes past their capacity (and says so); the
    ordinary 接入 from the queue still respects it."""
    boss = hub.users["super1"]
    capacity = hub.handoff.config.capacity
    for index in range(capacity):
        conv = await hub.conversation(f"v-boss{index}")
        await _queue(hub, f"v-boss{index}")
        assert (await hub.handoff.take_over(conv, boss))["over_capacity"] is False
    extra = await hub.conversation("v-boss-extra")
    await _queue(hub, "v-boss-extra")
    with pytest.raises(HandoffError) as refused:
        await hub.handoff.accept(extra, boss)
    assert refused.value.code == "at_capacity"
    assert (await hub.ownership.state(extra.id)).owner == Owner.QUEUED  # the refusal changed nothing
    outcome = await hub.handoff.take_over(extra, boss)
    assert outcome == {"load": capacity + 1, "capacity": capacity, "over_capacity": True}
    assert (await hub.ownership.state(extra.id)).agent_id == boss.id


async def test_take_over_of_a_served_conversation_must_find_it_where_the_board_showed_it(hub: Hub) -> None:
    a1, boss = hub.users["agent1"], hub.users["super1"]
    conv = await hub.conversation("v-take-served")
    await _queue(hub, "v-take-served")
    await hub.handoff.accept(conv, a1)
    await hub.handoff.take_over(conv, boss)
    assert await hub.ownership.agent_conversations(a1.id) == set()
    await hub.handoff.close(conv, boss.id, "resolved", "")
    with pytest.raises(HandoffError) as refused:  # closed meanwhile: nothing to take
        await hub.handoff.take_over(conv, boss)
    assert refused.value.code == "taken"


async def test_a_watch_list_lives_in_redis_and_drops_closed_conversations(hub: Hub) -> None:
    a1, boss = hub.users["agent1"], hub.users["super1"]
    conv = await hub.conversation("v-watched")
    other = await hub.conversation("v-watched2")
    for visitor in ("v-watched", "v-watched2"):
        await _queue(hub, visitor)
    await hub.handoff.watch(boss.id, conv.id)
    await hub.handoff.watch(boss.id, other.id)
    assert await hub.handoff.watched(boss.id) == sorted([conv.id, other.id])
    await hub.handoff.watch(boss.id, other.id, on=False)
    assert await hub.handoff.watched(boss.id) == [conv.id]
    await hub.handoff.accept(conv, a1)
    await hub.handoff.close(conv, a1.id, "resolved", "")
    assert await hub.handoff.watched(boss.id) == []


# ------------------------------------------------------------------- the waiting citizen's position


class FakeSocket:
    """A citizen's widget socket: frames in from a queue, frames out collected."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent: list[dict] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def __aiter__(self) -> FakeSocket:
        return self

    async def __anext__(self) -> str:
        item = await self.incoming.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def states(self) -> list[dict]:
        return [f for f in self.sent if f["type"] == "state"]


async def test_waiting_citizens_see_their_position_move_up_one_by_one(hub: Hub) -> None:
    """Positions are refreshed together (coalesced, one Redis call) but each change still reaches
    the citizen: 3 → 2 → 1; a citizen not waiting gets no position frames from others' moves."""
    from channels.web import WebChannel

    async def history(conversation_id: str) -> list[dict]:
        return []

    web = WebChannel(
        hub.dispatcher,
        hub.handoff.state_frame,
        history,
        max_frame_chars=4000,
        max_text_chars=1000,
        state_frames=hub.handoff.state_frames,
    )
    hub.bus.subscribe(web.on_event)
    await hub.bus.start()
    sockets = {name: FakeSocket() for name in ("v-pos1", "v-pos2", "v-pos3", "v-bystander")}
    visitors = {name: str(uuid.uuid4()) for name in sockets}
    serving = [asyncio.create_task(web.serve(ws)) for ws in sockets.values()]
    try:
        for name, ws in sockets.items():
            ws.incoming.put_nowait(json.dumps({"type": "hello", "visitor_id": visitors[name]}))
        for ws in sockets.values():
            await _until(lambda ws=ws: any(f["type"] == "welcome" for f in ws.sent))
        convs = {}
        for name in ("v-pos1", "v-pos2", "v-pos3"):
            convs[name] = await hub.dispatcher.open_conversation("web", visitors[name])
            await hub.dispatcher.request_human(convs[name], reason="button", announce=True)
        third = sockets["v-pos3"]
        await _until(lambda: third.states()[-1]["queue_position"] == 3)
        a1, a2 = hub.users["agent1"], hub.users["agent2"]
        await hub.handoff.accept(convs["v-pos1"], a1)
        await _until(lambda: third.states()[-1]["queue_position"] == 2)
        await hub.handoff.accept(convs["v-pos2"], a2)
        await _until(lambda: third.states()[-1]["queue_position"] == 1)
        positions = [f["queue_position"] for f in third.states() if f["owner"] == "queued"]
        assert positions == [3, 2, 1]
        assert all(f["eta_seconds"] for f in third.states() if f["owner"] == "queued")
        second = [f["queue_position"] for f in sockets["v-pos2"].states() if f["owner"] == "queued"]
        assert second == [2, 1]
        assert sockets["v-pos2"].states()[-1]["agent_name"] == a2.display_name
        bystander = sockets["v-bystander"].states()
        assert [f["owner"] for f in bystander] == ["bot"]  # its hello only
    finally:
        for ws in sockets.values():
            ws.incoming.put_nowait(None)
        await asyncio.gather(*serving, return_exceptions=True)
        await hub.bus.stop()


async def _until(check, limit: float = 10.0) -> None:
    """Wait for something the system does on its own (not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the system did not get there")
        await asyncio.sleep(0.02)

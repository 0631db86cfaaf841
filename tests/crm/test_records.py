"""CRM records on SQLite and PostgreSQL: merging keeps all history, the ticket SLA, and
all-or-nothing citizen import/export."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade
from core.models import AuditLog, Citizen, CitizenIdentity, CsatRating, Ticket, TicketEvent, User
from core.spreadsheet import SpreadsheetError
from crm import (
    CitizenDirectory,
    CitizenImporter,
    CitizenMerger,
    MergeError,
    TicketDesk,
    TicketError,
    TicketPolicy,
    add_message_ticket,
    all_citizens,
    export_citizens,
    parse_citizen_table,
)
from crm.transfer import COLUMNS
from handoff import ConversationStore
from tests.support import xlsx_bytes

GOOD_ID = "11010519491231002X"  # GB 11643's own example


def id_number(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url)
    made = make_sessionmaker(engine)
    async with made() as session, session.begin():
        session.add(User(id=1, username="a1", display_name="张敏", password_hash="x", role="agent"))
        session.add(User(id=2, username="s1", display_name="赵磊", password_hash="x", role="supervisor"))
    yield made
    await engine.dispose()


async def _count(sessions: async_sessionmaker[AsyncSession], model: type, **where: object) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int((await session.execute(query)).scalar_one())


# ---------------------------------------------------------------------------- merging


async def test_merge_moves_every_record_to_the_survivor_and_keeps_all_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = CitizenDirectory(sessions)
    conversations = ConversationStore(sessions)
    desk = TicketDesk(sessions)
    merger = CitizenMerger(sessions)
    # the same person: once on the web widget (named, with a phone), once on WeChat (an ID number)
    web = await directory.resolve("web_user", "visitor-merge")
    wechat = await directory.resolve("wechat_user", "openid-merge")
    await directory.update(web, name="王小明", phone="13812345678", tags=["老年人"])
    await directory.update(wechat, id_number=GOOD_ID, address="弥勒市髯翁路 1 号", tags=["重点关注"], notes="腿脚不便")
    assert await directory.link(wechat, "phone", "13900001111")
    web_conv, _ = await conversations.open_for("web", "visitor-merge", web)
    await conversations.record(web_conv.id, "web", "citizen", "居住证怎么办")
    wechat_conv, _ = await conversations.open_for("wechat", "openid-merge", wechat)
    await conversations.record(wechat_conv.id, "wechat", "citizen", "公积金怎么提取")
    async with sessions() as session, session.begin():
        await add_message_ticket(session, citizen_id=wechat, conversation_id=wechat_conv.id, text="请回电话",
                                 group="综合", due_hours=24, now=datetime.now(UTC))
        session.add(CsatRating(conversation_id=wechat_conv.id, citizen_id=wechat, agent_id=1, score=5))
    await directory.audit(1, "view_citizen", f"citizen:{wechat}", {"conversation": wechat_conv.id})

    result = await merger.merge(web, wechat, user_id=2, reason="同一人：电话核实")
    assert result.moved == {"identities": 2, "conversations": 1, "tickets": 1, "csat": 1}

    survivor = await directory.get(web)
    assert survivor is not None
    assert survivor.name == "王小明" and survivor.phone == "13812345678"  # the survivor's own values win
    assert survivor.id_number == GOOD_ID and survivor.address == "弥勒市髯翁路 1 号"  # filled from the other
    assert survivor.tags == ["老年人", "重点关注"] and survivor.notes == "腿脚不便"
    assert sorted(survivor.identities) == sorted(
        [("web_user", "visitor-merge"), ("wechat_user", "openid-merge"), ("phone", "13900001111")]
    )
    # the citizen writing again on WeChat is recognised as the survivor
    assert await directory.resolve("wechat_user", "openid-merge") == web
    # both conversations, with their transcripts, belong to the survivor
    previous = await conversations.previous_for_citizen(web, exclude="none")
    assert sorted(c.id for c in previous) == sorted([web_conv.id, wechat_conv.id])
    assert [m.text for m in await conversations.transcript(wechat_conv.id)] == ["公积金怎么提取"]
    assert [t.title for t in await desk.open_for_citizen(web)] == ["留言：请回电话"]
    assert await _count(sessions, CsatRating, citizen_id=web) == 1
    # the merged profile stays as a tombstone pointing at the survivor; nothing was deleted
    tombstone = await directory.get(wechat)
    assert tombstone is not None and tombstone.merged_into == web and tombstone.identities == []
    # the audit log is never rewritten, and the survivor's trail includes the merged profile's rows
    trail = await merger.audit_trail(web)
    assert {(r["action"], r["target"]) for r in trail} >= {
        ("view_citizen", f"citizen:{wechat}"), ("merge_citizen", f"citizen:{web}"), ("merged_into", f"citizen:{wechat}")
    }
    merge_row = next(r for r in trail if r["action"] == "merge_citizen")
    assert merge_row["user_id"] == 2 and merge_row["data"]["reason"] == "同一人：电话核实"
    assert merge_row["data"]["merged"] == wechat
    # the ticket's own history says it moved
    async with sessions() as session:
        kinds = (await session.execute(select(TicketEvent.kind).order_by(TicketEvent.id))).scalars().all()
    assert kinds == ["created", "merged"]
    # a merged-away profile can no longer be edited
    with pytest.raises(KeyError):
        await directory.update(wechat, name="别名")


async def test_bad_merges_are_refused_with_chinese_reasons_and_change_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = CitizenDirectory(sessions)
    merger = CitizenMerger(sessions)
    one = await directory.resolve("web_user", "v-one")
    two = await directory.resolve("web_user", "v-two")
    three = await directory.resolve("web_user", "v-three")
    cases = [((one, one), 400, "same_citizen"), ((one, 999999), 404, "not_found"), ((999999, one), 404, "not_found")]
    for (keep, other), status, code in cases:
        with pytest.raises(MergeError) as refused:
            await merger.merge(keep, other, user_id=2)
        assert refused.value.status == status and refused.value.code == code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.reason)
    await merger.merge(one, two, user_id=2)
    for keep, other in ((three, two), (two, three)):  # two is already merged away
        with pytest.raises(MergeError) as refused:
            await merger.merge(keep, other, user_id=2)
        assert refused.value.status == 409 and f"#{one}" in refused.value.reason
    assert await _count(sessions, CitizenIdentity, citizen_id=three) == 1
    assert await _count(sessions, AuditLog, action="merge_citizen") == 1


async def test_an_agents_proposal_waits_for_a_supervisor(sessions: async_sessionmaker[AsyncSession]) -> None:
    directory = CitizenDirectory(sessions)
    merger = CitizenMerger(sessions)
    one = await directory.resolve("web_user", "p-one")
    two = await directory.resolve("web_user", "p-two")
    three = await directory.resolve("web_user", "p-three")
    await merger.propose(one, two, user_id=1, reason="同名同电话")
    await merger.propose(one, three, user_id=1)
    proposals = await merger.proposals()
    assert [(p["keep_id"], p["merge_id"]) for p in proposals] == [(one, three), (one, two)]
    assert (await directory.get(two)).merged_into is None  # a proposal changes nothing
    await merger.refuse(proposals[0]["id"], user_id=2)
    keep, other, reason = await merger.proposal(proposals[1]["id"])
    await merger.merge(keep, other, user_id=2, reason=reason)
    assert await merger.proposals() == []
    assert (await directory.get(two)).merged_into == one and (await directory.get(three)).merged_into is None


# ---------------------------------------------------------------------------- tickets


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_ticket_first_response_sla_and_due_time_make_it_overdue(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    desk = TicketDesk(sessions, TicketPolicy(response_hours=24, due_hours=72), clock=clock)
    citizen = await CitizenDirectory(sessions).resolve("web_user", "v-sla")
    unanswered = await desk.create({"citizen_id": citizen, "title": "咨询社保转移", "assignee_id": 1}, created_by=1)
    answered = await desk.create({"citizen_id": citizen, "title": "补办居住证进度"}, created_by=1)
    assert unanswered.status == "open" and unanswered.response_due_at == clock.now + timedelta(hours=24)
    assert unanswered.due_at == clock.now + timedelta(hours=72)
    assert unanswered.to_json(clock.now)["seconds_to_deadline"] == 24 * 3600

    clock.now += timedelta(hours=23)
    ticket, changed = await desk.update(answered.id, {"reply": "已为您查询，正在制证。"}, user_id=1)
    assert changed == ["reply", "status"] and ticket.status == "processing" and ticket.first_response_at == clock.now
    assert await desk.list(overdue=True) == []

    clock.now += timedelta(hours=2)  # 25 h: the first one was never answered
    overdue = await desk.list(overdue=True)
    assert [t.id for t in overdue] == [unanswered.id]
    late = overdue[0].to_json(clock.now)
    assert late["overdue"] and late["overdue_reason"] == "超过首次响应时限" and late["seconds_to_deadline"] == -3600
    assert not (await desk.get(answered.id)).to_json(clock.now)["overdue"]
    assert [t.id for t in await desk.list(assignee_id=1)] == [unanswered.id]

    clock.now += timedelta(hours=48)  # 73 h: past the due time of the answered one too
    assert {t.id for t in await desk.list(overdue=True)} == {unanswered.id, answered.id}
    assert (await desk.get(answered.id)).overdue_reason(clock.now) == "超过处理期限"
    await desk.update(answered.id, {"status": "resolved"}, user_id=1)
    await desk.update(unanswered.id, {"status": "closed"}, user_id=2)
    assert await desk.list(overdue=True) == [] and await desk.list(status="active") == []
    history = [e["kind"] for e in await desk.events(answered.id)]
    assert history == ["created", "reply", "status", "status"]


async def test_left_message_tickets_get_the_sla_and_bad_ticket_input_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    desk = TicketDesk(sessions)
    citizen = await CitizenDirectory(sessions).resolve("web_user", "v-msg")
    conversation, _ = await ConversationStore(sessions).open_for("web", "v-msg", citizen)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        ticket_id = await add_message_ticket(session, citizen_id=citizen, conversation_id=conversation.id,
                                             text="下班后留言：请明天回电", group="综合", due_hours=24, now=now)
    ticket = await desk.get(ticket_id)
    assert ticket is not None and ticket.source == "message" and ticket.group == "综合"
    assert abs((ticket.response_due_at - now) - timedelta(hours=24)) < timedelta(seconds=1)
    for body, field in (
        ({"citizen_id": citizen, "title": " "}, "title"),
        ({"citizen_id": "x", "title": "t"}, "citizen_id"),
        ({"citizen_id": citizen, "title": "t", "assignee_id": 999}, "assignee_id"),
        ({"citizen_id": citizen, "title": "t", "due_at": "明天"}, "due_at"),
        ({"citizen_id": citizen, "title": "t", "due_at": "2020-01-01T08:00"}, "due_at"),
    ):
        with pytest.raises(TicketError) as refused:
            await desk.create(body, created_by=1)
        assert refused.value.status == 400 and refused.value.field == field
    with pytest.raises(TicketError) as refused:
        await desk.create({"citizen_id": 999999, "title": "t"}, created_by=1)
    assert refused.value.status == 404
    for body in ({"status": "done"}, {"reply": "  "}, {"owner": 1}, {}):
        with pytest.raises(TicketError):
            await desk.update(ticket_id, body, user_id=1)
    assert (await desk.get(ticket_id)).status == "open"
    assert await _count(sessions, Ticket) == 1


# ---------------------------------------------------------------------------- import / export


def _xlsx(rows: list[list[object]], columns: list[str] = COLUMNS) -> bytes:
    return xlsx_bytes(columns, rows)


def _people(n: int) -> list[list[object]]:
    return [
        [f"市民{i}", f"139{i:08d}", id_number(f"5325041980{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i % 1000:03d}"),
         f"弥勒市第{i}号", "老年人，低保" if i % 3 == 0 else "", f"备注{i}" if i % 2 else "",
         "是" if i % 10 == 0 else "否", ""]
        for i in range(1, n + 1)
    ]


async def test_import_with_bad_rows_in_the_middle_writes_nothing_and_numbers_every_bad_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = CitizenDirectory(sessions)
    existing = await directory.resolve("web_user", "v-existing")
    await directory.update(existing, name="已有客户", phone="13700000000")
    rows = _people(1200)
    rows[498][2] = rows[498][2][:17] + ("0" if rows[498][2][17] != "0" else "1")  # row 500: wrong check character
    rows[599][1] = "12345"  # row 601
    rows[699][0] = ""  # row 701: no name
    rows[799][2] = rows[10][2]  # row 801 repeats row 12's ID number
    rows[899][1] = "13700000000"  # row 901: another citizen's phone
    rows[999][6] = "也许"  # row 1001
    seen: list[tuple[str, int, int]] = []

    async def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))

    report = await CitizenImporter(sessions).run(parse_citizen_table(_xlsx(rows), "c.xlsx"), user_id=2,
                                                 progress=progress)
    assert not report.ok and report.created == 0
    by_row = {e.row: e.reason for e in report.errors}
    assert sorted(by_row) == [500, 601, 701, 801, 901, 1001]
    assert "身份证号" in by_row[500] and "校验码" in by_row[500]
    assert "电话" in by_row[601]
    assert "姓名为空" in by_row[701]
    assert "身份证号与第 12 行重复" in by_row[801]
    assert f"电话已属于客户 #{existing}" in by_row[901]
    assert "VIP“也许”无效" in by_row[1001]
    assert await _count(sessions, Citizen) == 1  # nothing written
    assert ("writing", 0, 1200) not in seen

    rows = _people(1200)
    report = await CitizenImporter(sessions).run(parse_citizen_table(_xlsx(rows), "c.xlsx"), user_id=2,
                                                 progress=progress)
    assert report.ok and report.created == 1200
    assert any(stage == "writing" and 0 < done < 1200 for stage, done, _ in seen)
    assert seen[-1] == ("done", 1200, 1200)
    assert await _count(sessions, Citizen) == 1201
    # a phone in the spreadsheet is an identity: that caller is recognised as the imported citizen
    found = await directory.resolve("phone", "13900000007")
    assert (await directory.get(found)).name == "市民7"
    assert await _count(sessions, AuditLog, action="import_citizens") == 1


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.xlsx"),
        (b"PK\x03\x04" + b"\x00" * 200, "broken.xlsx"),
        (b"%PDF-1.7\x00\x01binary", "citizens.csv"),
        ("客户,号码\n王,1\n".encode(), "citizens.csv"),  # a table, but not ours: no 姓名 column
        (b"", "citizens.xlsx"),
    ],
)
def test_a_file_that_is_not_a_citizen_spreadsheet_is_refused(data: bytes, name: str) -> None:
    with pytest.raises(SpreadsheetError) as refused:
        parse_citizen_table(data, name)
    assert refused.value.status == 400 and any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.reason)


async def test_export_then_import_into_an_empty_database_round_trips(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    directory = CitizenDirectory(sessions)
    for visitor, fields in (
        ("v-a", {"name": "王小明", "phone": "13812345678", "id_number": GOOD_ID, "address": "弥勒市, \"髯翁路\" 1 号",
                 "tags": ["老年人", "重点关注"], "notes": "=SUM(A1)\n第二行", "vip": True, "flagged": True}),
        ("v-b", {"name": "李四", "phone": "0873-1234567"}),
        ("v-c", {"name": "赵六", "id_number": id_number("53250419900307123")}),
    ):
        await directory.update(await directory.resolve("web_user", visitor), **fields)
    await directory.resolve("web_user", "v-anonymous")  # an anonymous visitor is not exported

    def shape(items: list) -> list[tuple]:
        return sorted((c.name, c.phone, c.id_number, c.address, tuple(c.tags), c.notes, c.vip, c.flagged)
                      for c in items)

    original = shape(await all_citizens(sessions))
    assert len(original) == 3
    for kind in ("xlsx", "csv"):
        data = export_citizens(await all_citizens(sessions), kind)
        url = f"sqlite:///{tmp_path / f'second-{kind}.db'}"
        await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
        engine = make_engine(url)
        try:
            fresh = make_sessionmaker(engine)
            report = await CitizenImporter(fresh).run(parse_citizen_table(data, f"c.{kind}"), user_id=None)
            assert report.ok, report.errors
            assert shape(await all_citizens(fresh)) == original, kind
        finally:
            await engine.dispose()
    # importing the export into the same database again: every row is a duplicate, nothing written
    again = await CitizenImporter(sessions).run(
        parse_citizen_table(export_citizens(await all_citizens(sessions), "csv"), "c.csv"), user_id=2
    )
    assert not again.ok and [e.row for e in again.errors] == [2, 3, 4]
    assert await _count(sessions, Citizen) == 4


async def test_profile_json_masks_phone_and_id_for_agents_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    directory = CitizenDirectory(sessions)
    citizen = await directory.resolve("web_user", "v-mask")
    await directory.update(citizen, name="王小明", phone="13812345678", id_number=GOOD_ID)
    await directory.link(citizen, "phone", "13812345678")
    view = await directory.get(citizen)
    for_agent = view.to_json("agent")
    assert for_agent["phone"] == "***5678" and for_agent["id_number"] == "***002X" and for_agent["masked"]
    assert {"kind": "phone", "value": "***5678"} in for_agent["identities"]
    for role in ("supervisor", "admin"):
        full = view.to_json(role)
        assert full["phone"] == "13812345678" and full["id_number"] == GOOD_ID and not full["masked"]
    assert GOOD_ID not in str(view.to_json("kb_editor"))


async def test_the_screen_pop_lists_open_tickets_and_is_audited(sessions: async_sessionmaker[AsyncSession]) -> None:
    from crm import build_screen_pop

    directory = CitizenDirectory(sessions)
    conversations = ConversationStore(sessions)
    citizen = await directory.resolve("web_user", "v-pop-tickets")
    await directory.update(citizen, name="王小明", id_number=GOOD_ID, vip=True)
    conversation, _ = await conversations.open_for("web", "v-pop-tickets", citizen)
    clock = Clock()
    clock.now = datetime.now(UTC) - timedelta(hours=30)
    old = TicketDesk(sessions, clock=clock)
    late = await old.create({"citizen_id": citizen, "title": "三十小时前的工单"}, created_by=1)
    done = await old.create({"citizen_id": citizen, "title": "已解决的工单"}, created_by=1)
    await old.update(done.id, {"status": "resolved"}, user_id=1)
    pop = await build_screen_pop(directory, conversations, conversation.id, viewer_id=1, viewer_role="agent")
    assert pop["citizen"]["id_number"] == "***002X" and pop["citizen"]["vip"] is True
    assert [(t["id"], t["overdue"]) for t in pop["open_tickets"]] == [(late.id, True)]
    assert await _count(sessions, AuditLog, action="view_citizen", target=f"citizen:{citizen}") == 1


async def test_import_jobs_report_progress_and_never_hang_on_a_crash(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis_client
) -> None:
    from core.spreadsheet import ImportJobs

    jobs = ImportJobs(redis_client, settings.redis_prefix, "crm")
    rows = parse_citizen_table(_xlsx(_people(3)), "c.xlsx")
    job = await jobs.create(len(rows), "s1", "c.xlsx")
    assert (await jobs.get(job))["state"] == "queued"
    state = await jobs.run(job, lambda progress: CitizenImporter(sessions).run(rows, user_id=2, progress=progress), 3)
    assert state["state"] == "done" and state["report"]["created"] == 3 and state["done"] == 3
    assert (await jobs.get(job))["report"]["ok"] is True

    async def crash(progress) -> None:
        await progress("writing", 1, 3)
        raise RuntimeError("disk full")

    crashed = await jobs.create(3, "s1", "c.xlsx")
    state = await jobs.run(crashed, crash, 3)
    assert state["state"] == "failed" and "未写入任何数据" in state["report"]["reason"]

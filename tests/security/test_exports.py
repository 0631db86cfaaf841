"""CSV and Excel exports neutralise formulas (issue #12, Security 4): a citizen who calls themselves
`=cmd|' /C calc'!A0` is a name in the supervisor's spreadsheet, not a command."""

from __future__ import annotations

import csv
import io

import httpx
from openpyxl import load_workbook

from core.spreadsheet import neutralise, read_table, to_csv, to_xlsx
from tests.conftest import RunningSystem
from tests.support import AgentClient, ChatClient, send_csrf_token

DDE = "=cmd|' /C calc'!A0"
DANGEROUS = [DDE, "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]
HARMLESS = ["王小明", "13812345678", "a=b", "", 42, -3]


def test_every_formula_start_is_written_as_text_and_read_back_as_typed() -> None:
    assert [neutralise(v) for v in DANGEROUS] == ["'" + v for v in DANGEROUS]
    assert [neutralise(v) for v in HARMLESS] == HARMLESS
    rows = [[value, "备注"] for value in DANGEROUS]
    cells = list(csv.reader(io.StringIO(to_csv(["姓名", "备注"], rows).decode("utf-8-sig"), newline="")))
    assert [row[0] for row in cells[1:]] == ["'" + v for v in DANGEROUS]
    sheet = load_workbook(io.BytesIO(to_xlsx(["姓名", "备注"], rows, title="t"))).active
    # (an xlsx cell keeps a carriage return as a line feed)
    written = [(c.value, c.data_type) for c in sheet["A"][1:]]
    assert written == [("'" + v.replace("\r", "\n"), "s") for v in DANGEROUS]
    # re-importing an export gives back what was typed (trimmed as every import cell is)
    columns = ["姓名", "备注"]
    for data, name in ((to_csv(columns, rows), "x.csv"), (to_xlsx(columns, rows, title="t"), "x.xlsx")):
        read = [values["姓名"] for _number, values in read_table(data, name, columns=columns, required=["姓名"])]
        assert read == [v.strip() for v in DANGEROUS], name


async def test_the_crm_export_of_a_formula_name_is_text(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen, AgentClient(system.hub_url, "agent2", "agent2pass") as agent:
        await citizen.say("我要转人工")
        conv = citizen.conversation_id
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        assigned = await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        citizen_id = assigned["screen_pop"]["citizen"]["id"]
        async with httpx.AsyncClient(base_url=system.hub_url, timeout=30) as http:
            send_csrf_token(http, await http.post("/api/login", json={"username": "agent2", "password": "agent2pass"}))
            named = await http.patch(f"/api/crm/citizens/{citizen_id}", json={"name": DDE})
            assert named.status_code == 200, named.text
        await agent.send({"type": "close", "conversation_id": citizen.conversation_id})
    async with httpx.AsyncClient(base_url=system.hub_url, timeout=30) as boss:
        await boss.post("/api/login", json={"username": "super1", "password": "super1pass"})
        exported = await boss.get("/api/crm/export", params={"format": "csv"})
        assert exported.status_code == 200
        text = exported.content.decode("utf-8-sig")
        assert "'" + DDE in text
        assert not [line for line in text.splitlines() if line.startswith(DDE) or f",{DDE}" in line]
        book = load_workbook(io.BytesIO((await boss.get("/api/crm/export", params={"format": "xlsx"})).content))
        values = [cell.value for row in book.active.iter_rows() for cell in row]
        assert "'" + DDE in values and DDE not in values


def test_control_characters_do_not_break_an_excel_export() -> None:
    # found by tests/reliability/test_fuzz_parsers.py: openpyxl refused the whole workbook (a 500)
    sheet = load_workbook(io.BytesIO(to_xlsx(["姓名"], [["王\x1f小明\x0b"]], title="t"))).active
    assert sheet["A2"].value == "王小明"

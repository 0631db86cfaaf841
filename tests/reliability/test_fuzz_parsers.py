"""Property-based fuzzing of every parser a stranger can reach (issue #12, Reliability 3).

Each parser either accepts its input or refuses it with its own 4xx error (FrameError, PushError,
ValueError, SpreadsheetError): never another exception, which the hub would answer with a 500. A
spreadsheet import accounts for every row exactly once (a clean record or a numbered error): no row
is half-taken. The suite runs FUZZ_EXAMPLES cases per parser (default 500, a fifth of that for each
spreadsheet parser: ~2,200 in all); `make fuzz` runs FUZZ_EXAMPLES=25000 (~110,000 in all).
"""

from __future__ import annotations

import io
import json
import os
import string
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.telegram.channel import parse_update
from channels.web import FrameError, parse_frame
from channels.wechat.config import WeChatConfig
from channels.wechat.push import PushError, open_push, signature_of
from core.errors import Refusal
from core.spreadsheet import to_csv, to_xlsx
from core.uploads import sniff
from crm.transfer import COLUMNS as CRM_COLUMNS
from crm.transfer import parse_citizen_table, validate_citizen_rows
from kb_sync.transfer import COLUMNS as KB_COLUMNS
from kb_sync.transfer import parse_table, validate_rows

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
# a spreadsheet case writes and reads a workbook (~100x a frame's cost): a fifth as many
FUZZ_TABLES = settings(FUZZ, max_examples=max(1, EXAMPLES // 5))

# JSON values with the field names the parsers look for, so the fuzzing reaches past "unknown field"
KEYS = st.sampled_from(["type", "text", "client_id", "visitor_id", "title", "active", "score", "comment",
                        "conversation_id", "update_id", "message", "chat", "id", "from", "date", "callback_query",
                        "data", "photo", "file_id", "first_name", "username", "is_bot", "message_id"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=50))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8),
                                                                                          inner, max_size=6),
                    max_leaves=20)
FRAME_TYPES = st.sampled_from(["hello", "message", "typing", "human", "ping", "leave_message", "csat", "x"])


@FUZZ
@given(st.one_of(
    st.text(max_size=200), st.binary(max_size=200), JSON.map(json.dumps),
    st.fixed_dictionaries({"type": FRAME_TYPES}, optional={"text": SCALARS, "client_id": SCALARS,
                                                           "visitor_id": SCALARS, "active": SCALARS}).map(json.dumps),
))
def test_web_frames(raw: Any) -> None:
    try:
        frame = parse_frame(raw, max_frame_chars=4000, max_text_chars=1000)
    except FrameError as error:
        assert error.reason  # a Chinese reason for the citizen
        return
    assert isinstance(frame.data, dict)


WECHAT = WeChatConfig(token="fuzz-token", mode="plaintext", app_id="wx0000000000000000")
XML_FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey",
              "PicUrl", "MediaId", "Format", "Recognition", "Location_X", "Location_Y", "Label", "Url", "Title"]
XML_TEXT = st.text(alphabet=string.printable + "中文<>&]]", max_size=30)


def xml_documents() -> Any:
    element = st.tuples(st.sampled_from(XML_FIELDS), XML_TEXT, st.booleans()).map(
        lambda t: f"<{t[0]}><![CDATA[{t[1]}]]></{t[0]}>" if t[2] else f"<{t[0]}>{t[1]}</{t[0]}>")
    return st.one_of(
        st.lists(element, max_size=10).map(lambda parts: "<xml>" + "".join(parts) + "</xml>"),
        st.text(max_size=200),
        st.just('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "b">]><xml><Content>&a;</Content></xml>'),
    ).map(lambda text: text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(xml_documents())
def test_wechat_pushes(body: bytes) -> None:
    now = time.time()
    timestamp, nonce = str(int(now)), "fuzz"
    args = {"signature": signature_of(WECHAT.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    try:
        push = open_push(WECHAT, args, body, now=now)
    except PushError as error:
        assert 400 <= error.status < 500
        return
    assert push.openid is not None


@FUZZ
@given(st.one_of(JSON, st.fixed_dictionaries({"update_id": st.integers()}, optional={
    "message": JSON, "callback_query": JSON, "edited_message": JSON}), st.fixed_dictionaries({
        "update_id": st.integers(), "message": st.fixed_dictionaries({
            "message_id": st.integers(), "date": st.integers(), "chat": st.fixed_dictionaries({
                "id": st.integers(), "type": st.sampled_from(["private", "group", "x"])}),
        }, optional={"text": SCALARS, "from": JSON, "photo": JSON, "caption": SCALARS})})))
def test_telegram_updates(data: Any) -> None:
    try:
        parsed = parse_update(data)
    except ValueError:
        return
    assert parsed.update_id == data["update_id"]


@FUZZ
@given(st.binary(max_size=64) | st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"%PDF-", b"GIF89a",
                                                  b"RIFF\x00\x00\x00\x00WEBP", b"#!AMR\n"]).flatmap(
    lambda head: st.binary(max_size=32).map(lambda tail: head + tail)))
def test_upload_sniffing(data: bytes) -> None:
    assert sniff(data) in (None, "jpg", "png", "gif", "webp", "pdf", "amr", "mp3", "speex", "silk", "wav")


CELL = st.one_of(st.text(max_size=20), st.integers(), st.sampled_from(["", "是", "否", "2026-01-31", "published",
                                                                       "13812345678", "=1+1", "户籍/迁移"]))


def spreadsheets(columns: list[str]) -> Any:
    header = st.lists(st.sampled_from([*columns, "其他", ""]), min_size=1, max_size=len(columns) + 1)
    table = st.tuples(header, st.lists(st.lists(CELL, max_size=len(columns) + 2), max_size=8))
    as_file = st.sampled_from(["csv", "csv", "csv", "xlsx"])

    def build(parts: tuple[tuple[list[str], list[list[Any]]], str]) -> tuple[bytes, str]:
        (head, rows), kind = parts
        width = len(head)
        rows = [(row + [""] * width)[:width] for row in rows]
        data = to_csv(head, rows) if kind == "csv" else to_xlsx(head, rows, title="t")
        return data, f"fuzz.{kind}"

    return st.one_of(st.tuples(table, as_file).map(build),
                     st.tuples(st.binary(max_size=300), st.sampled_from(["x.csv", "x.xlsx", "x"])))


def _every_row_once(rows: list[tuple[int, dict]], clean: list[dict], errors: list[Any]) -> None:
    numbers = [number for number, _values in rows]
    taken = [item["row"] for item in clean]
    refused = [error.row for error in errors]
    assert sorted(taken + refused) == sorted(numbers)  # each row: one clean record or one error


@FUZZ_TABLES
@given(spreadsheets(KB_COLUMNS))
def test_kb_spreadsheets(upload: tuple[bytes, str]) -> None:
    try:
        rows = parse_table(*upload)
    except Refusal as error:  # the import's 4xx with a Chinese reason
        assert 400 <= error.status < 500 and error.reason
        return
    clean, errors, _create = validate_rows(rows, branch_paths={"户籍": 1}, existing_questions={},
                                           create_branches=False)
    _every_row_once(rows, clean, errors)


@FUZZ_TABLES
@given(spreadsheets(CRM_COLUMNS))
def test_crm_spreadsheets(upload: tuple[bytes, str]) -> None:
    try:
        rows = parse_citizen_table(*upload)
    except Refusal as error:  # the import's 4xx with a Chinese reason
        assert 400 <= error.status < 500 and error.reason
        return
    clean, errors = validate_citizen_rows(rows, existing_phones={}, existing_ids={})
    _every_row_once(rows, clean, errors)


def test_fuzz_examples_are_counted() -> None:
    # the CSV and XLSX writers the spreadsheet strategy uses round-trip a plain table
    data = to_csv(["姓名"], [["王小明"]])
    assert parse_citizen_table(data, "x.csv")[0][1]["姓名"] == "王小明"
    assert io.BytesIO(to_xlsx(["姓名"], [["王小明"]], title="t")).getvalue()[:2] == b"PK"

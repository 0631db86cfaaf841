"""The KB editor's API: branches, entries with versions, bulk actions, import/export,
未解决问题, preview before publishing, and the citizens' 👍/👎 on bot answers.

Every error is a 4xx JSON ``{"reason": <Chinese>, "code": ...}`` and changes nothing.
Every change to published content calls ``AnswerService.notify_changed()`` so every hub
worker answers with it before its next question.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sanic import Blueprint, Request, response
from sanic.exceptions import PayloadTooLarge
from sanic.response import HTTPResponse

from bot.retrain import RetrainBusy, RetrainJobs, questions_of
from core import audit
from core.rate_limit import FEEDBACK_REFUSED, feedback_allowed
from hub.app import current_user, error
from hub.auth import StaffUser
from hub.routes.access import staff_only
from hub.routes.accounts import client_ip
from kb_sync.jobs import ImportJobs
from kb_sync.preview import EMBEDDER, draft_from, draft_from_view, preview_draft
from kb_sync.store import LOCAL_TZ, STATUSES, Change, KbError, SearchFilters
from kb_sync.transfer import KbImporter, export_entries, parse_table, template
from kb_sync.unanswered import mark_resolved, record_feedback, unanswered_groups

bp = Blueprint("kb_editor")

EDITOR_ROLES = ("kb_editor", "supervisor")  # admin may do everything (StaffUser.may)
BULK_ACTIONS = {"publish": "published", "draft": "draft", "archive": "archived"}


@bp.exception(PayloadTooLarge)
async def too_large(request: Request, exception: Exception) -> HTTPResponse:
    limit = request.app.config.REQUEST_MAX_SIZE / (1024 * 1024)
    return error(413, f"文件太大：上传内容不能超过 {limit:g} MB。", "too_large")


def services(request: Request) -> Any:
    return request.app.ctx.services


# 401/403 JSON unless a KB editor, supervisor or admin is logged in; KbError → its 4xx.
editor_only = staff_only(EDITOR_ROLES, "无权编辑知识库：需要知识库编辑或班长账号。", (KbError,))


def body_of(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise KbError(400, "请求格式错误：不是有效的 JSON。", "bad_json") from None
    if not isinstance(body, dict):
        raise KbError(400, "请求格式错误。", "bad_json")
    return body


def int_or_none(value: Any, label: str) -> int | None:
    if value in (None, "", "null"):
        return None
    if isinstance(value, bool):
        raise KbError(400, f"{label}不正确。", "bad_field")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise KbError(400, f"{label}不正确。", "bad_field") from None


def editor_name(user: StaffUser) -> str:
    return user.display_name or user.username


async def published_changed(request: Request, change: Change | bool) -> None:
    if change is True or (isinstance(change, Change) and change.published_changed):
        await services(request).answers.notify_changed()
        ids = change.ids if isinstance(change, Change) else []
        await audit.write(services(request).sessions, await current_user(request), "kb_publish",
                          f"kb:{','.join(ids[:5])}"[:128], client_ip(request), {"count": len(ids), "ids": ids[:200]})


def threshold(request: Request) -> float:
    return float(services(request).answers.threshold)


# ---------------------------------------------------------------------------- branches


@bp.get("/api/kb/branches")
@editor_only
async def list_branches(request: Request, user: StaffUser) -> HTTPResponse:
    items = await services(request).kb.branches()
    return response.json({"items": [b.to_json() for b in items]})


@bp.post("/api/kb/branches")
@editor_only
async def create_branch(request: Request, user: StaffUser) -> HTTPResponse:
    body = body_of(request)
    parent_id = int_or_none(body.get("parent_id"), "上级知识分类")
    branch = await services(request).kb.create_branch(body.get("name"), parent_id)
    return response.json(branch.to_json(), status=201)


@bp.patch("/api/kb/branches/<branch_id:int>")
@editor_only
async def change_branch(request: Request, user: StaffUser, branch_id: int) -> HTTPResponse:
    body = body_of(request)
    kb = services(request).kb
    if "name" not in body and "parent_id" not in body:
        raise KbError(400, "请提供新名称（name）或新的上级分类（parent_id）。", "bad_field")
    branch, published = None, False
    if "name" in body:
        branch, published = await kb.rename_branch(branch_id, body["name"])
    if "parent_id" in body:
        branch, moved_published = await kb.move_branch(branch_id, int_or_none(body["parent_id"], "上级知识分类"))
        published = published or moved_published
    await published_changed(request, published)
    assert branch is not None
    return response.json(branch.to_json())


@bp.delete("/api/kb/branches/<branch_id:int>")
@editor_only
async def delete_branch(request: Request, user: StaffUser, branch_id: int) -> HTTPResponse:
    await services(request).kb.delete_branch(branch_id)
    return response.json({"ok": True})


# ---------------------------------------------------------------------------- entries


def _date(value: str, label: str, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD date (Beijing time) as the start of that day, or of the next one for an end bound."""
    if not value:
        return None
    try:
        day = datetime.strptime(value.strip()[:10], "%Y-%m-%d").replace(tzinfo=LOCAL_TZ)
    except ValueError:
        raise KbError(400, f"{label}格式不正确（应为 2026-01-31）。", "bad_date") from None
    return day + timedelta(days=1) if end else day


@bp.get("/api/kb/search")
@editor_only
async def search_entries(request: Request, user: StaffUser) -> HTTPResponse:
    args = request.args
    status = args.get("status", "")
    if status and status not in STATUSES:
        raise KbError(400, "状态只能是草稿、已发布或已归档。", "bad_status")
    limit = int_or_none(args.get("limit"), "每页条数") or 50
    offset = int_or_none(args.get("offset"), "起始位置") or 0
    filters = SearchFilters(
        text=args.get("q", "")[:100], branch_id=int_or_none(args.get("branch_id"), "知识分类"), status=status,
        editor=args.get("editor", "")[:64], updated_from=_date(args.get("from", ""), "开始日期"),
        updated_to=_date(args.get("to", ""), "结束日期", end=True), limit=max(1, min(limit, 500)),
        offset=max(0, offset),
    )
    items, total = await services(request).kb.find(filters)
    return response.json({"items": [i.to_json() for i in items], "total": total, "limit": filters.limit,
                          "offset": filters.offset})


@bp.get("/api/kb/editors")
@editor_only
async def list_editors(request: Request, user: StaffUser) -> HTTPResponse:
    return response.json({"items": await services(request).kb.editors()})


@bp.post("/api/kb/entries")
@editor_only
async def create_entry(request: Request, user: StaffUser) -> HTTPResponse:
    body = body_of(request)
    kb = services(request).kb
    change = await kb.create_entry(body, editor_name(user))
    await published_changed(request, change)
    resolve = body.get("resolve_questions")
    if isinstance(resolve, list) and resolve:
        await mark_resolved(kb.sessions, [q for q in resolve if isinstance(q, str)], change.ids[0], editor_name(user))
    return response.json(change.views[0].to_json(), status=201)


@bp.get("/api/kb/entries/<entry_id:str>")
@editor_only
async def get_entry(request: Request, user: StaffUser, entry_id: str) -> HTTPResponse:
    entry = await services(request).kb.get(entry_id)
    if entry is None:
        raise KbError(404, "知识条目不存在或已被删除。", "no_entry")
    return response.json(entry.to_json())


@bp.put("/api/kb/entries/<entry_id:str>")
@editor_only
async def update_entry(request: Request, user: StaffUser, entry_id: str) -> HTTPResponse:
    body = body_of(request)
    fields = {k: v for k, v in body.items() if k in (
        "branch_id", "question", "similar", "answer", "short_answer", "keywords", "valid_from", "valid_to")}
    change = await services(request).kb.update_entry(
        entry_id, fields, editor_name(user), int_or_none(body.get("version"), "版本号"))
    await published_changed(request, change)
    return response.json(change.views[0].to_json())


@bp.post("/api/kb/entries/<entry_id:str>/status")
@editor_only
async def set_status(request: Request, user: StaffUser, entry_id: str) -> HTTPResponse:
    body = body_of(request)
    kb = services(request).kb
    change = await kb.set_status(entry_id, str(body.get("status") or ""), editor_name(user))
    await published_changed(request, change)
    entry = await kb.get(entry_id)
    assert entry is not None
    return response.json(entry.to_json())


@bp.get("/api/kb/entries/<entry_id:str>/versions")
@editor_only
async def entry_versions(request: Request, user: StaffUser, entry_id: str) -> HTTPResponse:
    items = await services(request).kb.versions(entry_id)
    if not items:
        raise KbError(404, "知识条目不存在或没有历史版本。", "no_entry")
    return response.json({"items": items})


@bp.post("/api/kb/entries/<entry_id:str>/rollback")
@editor_only
async def rollback(request: Request, user: StaffUser, entry_id: str) -> HTTPResponse:
    body = body_of(request)
    number = int_or_none(body.get("version"), "版本号")
    if number is None:
        raise KbError(400, "请指定要回滚到的版本号。", "bad_field")
    change = await services(request).kb.rollback(entry_id, number, editor_name(user))
    await published_changed(request, change)
    return response.json(change.views[0].to_json())


@bp.delete("/api/kb/entries/<entry_id:str>")
@editor_only
async def delete_entry(request: Request, user: StaffUser, entry_id: str) -> HTTPResponse:
    change = await services(request).kb.delete_entries([entry_id], editor_name(user))
    await published_changed(request, change)
    return response.json({"ok": True, "count": 1})


@bp.post("/api/kb/bulk")
@editor_only
async def bulk(request: Request, user: StaffUser) -> HTTPResponse:
    body = body_of(request)
    action = body.get("action")
    ids = body.get("ids")
    kb = services(request).kb
    if not isinstance(ids, list) or not ids:
        raise KbError(400, "请至少选择一个知识条目。", "no_selection")
    if action in BULK_ACTIONS:
        change = await kb.set_status_many(ids, BULK_ACTIONS[action], editor_name(user))
    elif action == "move":
        branch_id = int_or_none(body.get("branch_id"), "目标知识分类")
        if branch_id is None:
            raise KbError(400, "请选择目标知识分类。", "no_branch")
        change = await kb.move_entries(ids, branch_id, editor_name(user))
    elif action == "delete":
        change = await kb.delete_entries(ids, editor_name(user))
    else:
        raise KbError(400, "批量操作只能是发布、转草稿、归档、移动或删除。", "bad_action")
    await published_changed(request, change)
    return response.json({"ok": True, "action": action, "count": len(change.ids)})


# ---------------------------------------------------------------------------- import / export


def _download(data: bytes, name: str, kind: str) -> HTTPResponse:
    mime = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if kind == "xlsx"
            else "text/csv; charset=utf-8")
    filename = f"{name}.{kind}"
    return response.raw(data, content_type=mime, headers={
        "Content-Disposition": f"attachment; filename=\"kb.{kind}\"; filename*=UTF-8''{quote(filename)}"})


def _kind(request: Request) -> str:
    kind = request.args.get("format", "xlsx")
    if kind not in ("xlsx", "csv"):
        raise KbError(400, "格式只能是 xlsx 或 csv。", "bad_format")
    return kind


@bp.get("/api/kb/template")
@editor_only
async def download_template(request: Request, user: StaffUser) -> HTTPResponse:
    kind = _kind(request)
    return _download(template(kind), "知识库导入模板", kind)


@bp.get("/api/kb/export")
@editor_only
async def export(request: Request, user: StaffUser) -> HTTPResponse:
    kind = _kind(request)
    status = request.args.get("status", "")
    if status and status not in STATUSES:
        raise KbError(400, "状态只能是草稿、已发布或已归档。", "bad_status")
    entries = await services(request).kb.all_entries(int_or_none(request.args.get("branch_id"), "知识分类"), status)
    stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    await audit.write(services(request).sessions, user, "kb_export", "kb", client_ip(request),
                      {"count": len(entries), "status": status, "format": kind})
    return _download(export_entries(entries, kind), f"知识库导出-{stamp}", kind)


def _jobs(request: Request) -> ImportJobs:
    return ImportJobs(services(request).redis, services(request).keys)


@bp.post("/api/kb/imports")
@editor_only
async def start_import(request: Request, user: StaffUser) -> HTTPResponse:
    upload = request.files.get("file") if request.files else None
    if upload is None:
        raise KbError(400, "请选择要导入的文件。", "no_file")
    create_branches = (request.form.get("create_branches") or "") in ("1", "true", "on", "yes")
    rows = parse_table(upload.body, upload.name or "")
    if not rows:
        raise KbError(400, "表格中没有数据行。", "empty_file")
    jobs = _jobs(request)
    job_id = await jobs.create(len(rows), editor_name(user), upload.name or "")
    answers = services(request).answers
    request.app.add_task(jobs.run(job_id, KbImporter(services(request).kb), rows, editor_name(user),
                                  create_branches, on_published=answers.notify_changed), name=f"kb_import_{job_id}")
    return response.json({"id": job_id, "total": len(rows)}, status=202)


@bp.get("/api/kb/imports/<job_id:str>")
@editor_only
async def import_status(request: Request, user: StaffUser, job_id: str) -> HTTPResponse:
    state = await _jobs(request).get(job_id[:64])
    if state is None:
        raise KbError(404, "导入任务不存在或已过期。", "no_job")
    return response.json(state)


# ---------------------------------------------------------------------------- bot model


def _retrain(request: Request) -> RetrainJobs:
    svc = services(request)
    return RetrainJobs(svc.redis, svc.keys.prefix, svc.settings.rasa_nodes, token=svc.settings.rasa_token)


@bp.post("/api/kb/retrain")
@editor_only
async def start_retrain(request: Request, user: StaffUser) -> HTTPResponse:
    """Retrain the bot's Rasa model from the published KB in the background and swap it in.

    Body (optional): {"reload": true} loads the model into Rasa even when it already serves it.
    """
    body = body_of(request) if request.body else {}
    jobs = _retrain(request)
    try:
        state, token = await jobs.start(editor_name(user), reload=body.get("reload") is True)
    except RetrainBusy as busy:
        raise KbError(409, str(busy), "retrain_running") from None
    kb = services(request).kb

    async def collect() -> list[str]:
        return questions_of(await kb.published())

    request.app.add_task(jobs.run(state, token, collect), name=f"bot_retrain_{token}")
    return response.json(state, status=202)


@bp.get("/api/kb/retrain")
@editor_only
async def retrain_status(request: Request, user: StaffUser) -> HTTPResponse:
    return response.json(await _retrain(request).get())


# ---------------------------------------------------------------------------- 未解决问题


def _days(value: Any) -> int:
    days = int_or_none(value, "天数") or 30
    if not 1 <= days <= 365:
        raise KbError(400, "天数应在 1 到 365 之间。", "bad_days")
    return days


@bp.get("/api/kb/unanswered")
@editor_only
async def unanswered(request: Request, user: StaffUser) -> HTTPResponse:
    days = _days(request.args.get("days"))
    low = min(1.0, threshold(request) + 0.15)
    groups = await unanswered_groups(services(request).kb.sessions, EMBEDDER, days=days, low_score=low)
    limit = max(1, min(int_or_none(request.args.get("limit"), "条数") or 100, 500))
    return response.json({"days": days, "total": len(groups), "items": [g.to_json() for g in groups[:limit]]})


@bp.post("/api/kb/unanswered/suggest")
@editor_only
async def suggest(request: Request, user: StaffUser) -> HTTPResponse:
    body = body_of(request)
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        raise KbError(400, "问题不能为空。", "bad_field")
    outcome = await services(request).answers.answer(question[:300])
    kb = services(request).kb
    items = []
    for rank, hit in enumerate(outcome.candidates):
        if rank and hit.score < 0.01:
            continue  # no resemblance at all: noise in the list
        entry = await kb.get(hit.entry_id)
        if entry is not None:
            items.append({"entry_id": entry.id, "question": entry.question, "branch": entry.branch_path,
                          "status": entry.status, "score": round(hit.score, 4)})
    return response.json({"items": items})


def _questions(body: dict[str, Any]) -> list[str]:
    questions = body.get("questions")
    if not isinstance(questions, list) or not questions or not all(isinstance(q, str) for q in questions):
        raise KbError(400, "请提供问题列表。", "bad_field")
    return [q.strip()[:500] for q in questions if q.strip()][:200]


@bp.post("/api/kb/unanswered/attach")
@editor_only
async def attach(request: Request, user: StaffUser) -> HTTPResponse:
    """Add the questions as similar questions of an existing entry."""
    body = body_of(request)
    questions = _questions(body)
    entry_id = body.get("entry_id")
    if not isinstance(entry_id, str) or not entry_id:
        raise KbError(400, "请选择知识条目。", "no_entry")
    kb = services(request).kb
    change = await kb.add_similar(entry_id, questions, editor_name(user))
    await published_changed(request, change)
    await mark_resolved(kb.sessions, questions, entry_id, editor_name(user))
    return response.json(change.views[0].to_json())


@bp.post("/api/kb/unanswered/resolve")
@editor_only
async def resolve(request: Request, user: StaffUser) -> HTTPResponse:
    """Take questions off the list (dealt with elsewhere, or not a KB matter)."""
    body = body_of(request)
    entry_id = body.get("entry_id") if isinstance(body.get("entry_id"), str) else None
    count = await mark_resolved(services(request).kb.sessions, _questions(body), entry_id, editor_name(user))
    return response.json({"ok": True, "count": count})


# ---------------------------------------------------------------------------- preview


@bp.post("/api/kb/preview")
@editor_only
async def preview(request: Request, user: StaffUser) -> HTTPResponse:
    """Body: {"entry_id"?: id, "entry"?: {form fields}, "days"?: 30}: the entry as it would be published."""
    body = body_of(request)
    kb = services(request).kb
    entry_id = body.get("entry_id") if isinstance(body.get("entry_id"), str) and body.get("entry_id") else None
    stored = await kb.get(entry_id) if entry_id else None
    if entry_id and stored is None:
        raise KbError(404, "知识条目不存在或已被删除。", "no_entry")
    form = body.get("entry")
    if isinstance(form, dict):
        branch = stored.branch if stored else ""
        branch_id = int_or_none(form.get("branch_id"), "知识分类")
        if branch_id is not None:
            tree = await kb.tree()
            if branch_id in tree.by_id:
                branch = tree.by_id[branch_id].name
        draft = draft_from(form, entry_id, branch)
    elif stored is not None:
        draft = draft_from_view(stored)
    else:
        raise KbError(400, "请提供要预览的知识条目。", "bad_field")
    rasa = services(request).rasa

    async def intent_of(text: str) -> tuple[str | None, float]:
        parsed = await rasa.parse(text)
        return parsed.intent, parsed.confidence

    result = await preview_draft(kb, draft, days=_days(body.get("days")), threshold=threshold(request),
                                 answers=services(request).answers, intents=intent_of)
    return response.json(result)


# ---------------------------------------------------------------------------- citizens' votes


@bp.post("/api/feedback")
async def feedback(request: Request) -> HTTPResponse:
    """A web visitor's 👍/👎 on a bot answer: {message_id, visitor_id, vote: "up"|"down"}."""
    try:
        body = body_of(request)
        visitor_id = body.get("visitor_id")
        if isinstance(visitor_id, str) and visitor_id.strip():
            visitor_id = services(request).web.public_id(visitor_id[:128])  # the credential's public id
            if not await feedback_allowed(services(request), visitor_id):
                return error(429, FEEDBACK_REFUSED, "rate_limited")  # per visitor, in Redis (core.rate_limit)
        result = await record_feedback(services(request).sessions, body.get("message_id"), visitor_id,
                                       body.get("vote"))
    except KbError as failure:
        return error(failure.status, failure.reason, failure.code)
    entry_id = result.pop("kb_entry_id", None)
    if result["vote"] == "down":  # #13.4: a person, or the questions near the one that did not help
        related = await services(request).answers.related(entry_id) if isinstance(entry_id, str) else []
        result["related"] = [{"title": a.question, "payload": a.question} for a in related]
        result["offer_human"] = True
    return response.json(result)

"""The QA center over HTTP (质检中心). Pages: `/qa` (inspectors and supervisors: 质检任务, 会话检索,
质检规则, 评分表, 复核, 内容审核), `/qa/reports` (报表, with charts and Excel export) and `/qa/mine`
(我的质检: an agent's own results and 复核 requests).

API (4xx with a Chinese `reason`):
- `GET /api/qa/tasks?status=open|done|all`; `POST /api/qa/sampling/weekly {day}` (supervisors);
- `GET /api/qa/items/<id>`; `POST /api/qa/items/<id>/inspection {scores, comments: [{message_id, text}], note}`;
- `GET /api/qa/search?q=&agent_id=&from=&to=&channel=&min=&max=`; `GET /api/qa/agents`;
- `GET|PUT /api/qa/rules {rules, note}`; `GET|PUT /api/qa/sheets {name, pass_mark, items}` (PUT: supervisors);
- `GET /api/qa/mine`; `POST /api/qa/items/<id>/appeal {reason}` (the item's agent);
- `GET /api/qa/appeals?status=`; `POST /api/qa/appeals/<id>/decision {decision: uphold|change, scores, note}`;
- `GET /api/qa/reports/qa|service?from=&to=&period=day|week|month&by=none|agent|group` (`&format=xlsx`);
- `GET /api/qa/content/flagged?days=`; `POST /api/qa/screen {text}` (what content review would hold back).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sanic import Blueprint, Request, Sanic, response
from sanic.response import HTTPResponse
from sqlalchemy import select

from core.errors import Refusal
from core.models import User
from core.models.qa import QaRuleSet, QaSheet
from core.spreadsheet import XLSX_MIME, to_xlsx
from hub.app import current_user, error
from hub.auth import StaffUser
from hub.routes.access import staff_only
from qa import KINDS, UNMASKED, QaCenter, Query, flagged_citizen_messages, qa_report, search, service_report
from qa.audit import audit
from qa.sampling import weekly_minimum

bp = Blueprint("qa")

PAGES = Path(__file__).resolve().parent.parent / "pages"
INSPECT = ("inspector", "supervisor")
MANAGE = ("supervisor",)
REFUSED = "只有质检员和班长可以使用质检中心。"


def _qa(request: Request) -> QaCenter:
    return request.app.ctx.services.qa


def _body(request: Request) -> dict[str, Any]:
    try:
        body = request.json
    except Exception:
        body = None
    if not isinstance(body, dict):
        raise Refusal(400, "请求格式错误。", "bad_json")
    return body


def guarded(roles: tuple[str, ...], refusal: str = REFUSED) -> Any:
    return staff_only(roles, refusal, (Refusal,))


@bp.after_server_start
async def start_scorer(app: Sanic) -> None:
    app.add_task(app.ctx.services.qa.run(), name="qa_scorer")


async def _page(request: Request, name: str, roles: tuple[str, ...], path: str) -> HTTPResponse:
    user = await current_user(request)
    if user is None:
        return response.redirect(f"/login?next={quote(path)}")
    if not user.may(*roles):
        return response.html("<h1>403 无权访问</h1><p>您的账号没有此页面的权限。</p>", status=403)
    return response.html((PAGES / f"{name}.html").read_text(encoding="utf-8"))


@bp.get("/qa")
async def qa_page(request: Request) -> HTTPResponse:
    return await _page(request, "qa", INSPECT, "/qa")


@bp.get("/qa/reports")
async def reports_page(request: Request) -> HTTPResponse:
    return await _page(request, "qa_reports", INSPECT, "/qa/reports")


@bp.get("/qa/mine")
async def mine_page(request: Request) -> HTTPResponse:
    return await _page(request, "qa_mine", ("agent", "supervisor"), "/qa/mine")


# -- tasks, items, inspection ----------------------------------------------------------------------
@bp.get("/api/qa/tasks")
@guarded(INSPECT)
async def tasks(request: Request, user: StaffUser) -> HTTPResponse:
    status = request.args.get("status", "open")
    return response.json({"items": await _qa(request).desk.tasks(user, status)})


@bp.post("/api/qa/sampling/weekly")
@guarded(MANAGE, "只有班长可以补足抽样。")
async def sampling_weekly(request: Request, user: StaffUser) -> HTTPResponse:
    raw = _body(request).get("day") or date.today().isoformat()
    try:
        day = date.fromisoformat(str(raw)).isoformat()
    except ValueError as problem:
        raise Refusal(400, "日期格式应为 YYYY-MM-DD。", "bad_date") from problem
    center = _qa(request)
    async with center.sessions() as session:
        made = await weekly_minimum(session, center.plan, day)
        audit(session, user.id, "qa.sampling", f"week:{day}", tasks=made)
        await session.commit()
    return response.json({"created": made})


@bp.get("/api/qa/items/<item_id:int>")
@guarded(("inspector", "supervisor", "agent"))
async def item(request: Request, user: StaffUser, item_id: int) -> HTTPResponse:
    return response.json(await _qa(request).desk.view(item_id, user))


@bp.post("/api/qa/items/<item_id:int>/inspection")
@guarded(INSPECT)
async def inspect(request: Request, user: StaffUser, item_id: int) -> HTTPResponse:
    body = _body(request)
    result = await _qa(request).desk.inspect(item_id, user, body.get("scores"), body.get("comments"), body.get("note"))
    return response.json(result)


# -- search ------------------------------------------------------------------------------------------
def _number(raw: str | None) -> float | None:
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError as problem:
        raise Refusal(400, "分数必须是数字。", "bad_score") from problem


@bp.get("/api/qa/search")
@guarded(INSPECT)
async def search_items(request: Request, user: StaffUser) -> HTTPResponse:
    args = request.args
    agent = args.get("agent_id")
    if agent not in (None, "") and not str(agent).isdigit():
        raise Refusal(400, "坐席编号不正确。", "bad_agent")
    for key in ("from", "to"):
        if args.get(key):
            try:
                date.fromisoformat(args.get(key))
            except ValueError as problem:
                raise Refusal(400, "日期格式应为 YYYY-MM-DD。", "bad_date") from problem
    query = Query(
        text=str(args.get("q") or "")[:100], agent_id=int(agent) if agent else None, day_from=args.get("from"),
        day_to=args.get("to"), channel=args.get("channel") or None, score_min=_number(args.get("min")),
        score_max=_number(args.get("max")),
    )
    async with _qa(request).sessions() as session:
        items = await search(session, query, masked=user.role not in UNMASKED)
    return response.json({"items": items})


@bp.get("/api/qa/agents")
@guarded(INSPECT)
async def agents(request: Request, user: StaffUser) -> HTTPResponse:
    async with _qa(request).sessions() as session:
        rows = await session.execute(
            select(User.id, User.display_name).where(User.role.in_(("agent", "supervisor"))).order_by(User.id)
        )
    return response.json({"items": [{"id": i, "display_name": n} for i, n in rows]})


# -- rules and sheets (versioned) ------------------------------------------------------------------
@bp.get("/api/qa/rules")
@guarded(INSPECT)
async def rules(request: Request, user: StaffUser) -> HTTPResponse:
    history = await _qa(request).versions.history(QaRuleSet)
    return response.json({
        "kinds": KINDS,
        "current": {"version": history[0].version, "rules": history[0].rules},
        "history": [{"version": r.version, "note": r.note, "created_by": r.created_by,
                     "created_at": r.created_at.isoformat(), "rules": len(r.rules)} for r in history],
    })


@bp.put("/api/qa/rules")
@guarded(MANAGE, "只有班长可以修改质检规则。")
async def save_rules(request: Request, user: StaffUser) -> HTTPResponse:
    body = _body(request)
    center = _qa(request)
    row = await center.versions.save_rules(body.get("rules"), user.username, str(body.get("note") or ""))
    async with center.sessions() as session:
        audit(session, user.id, "qa.rules.save", f"qa_rules:v{row.version}", note=row.note)
        await session.commit()
    await center.content.refresh(force=True)
    return response.json({"version": row.version})


@bp.get("/api/qa/sheets")
@guarded(INSPECT)
async def sheets(request: Request, user: StaffUser) -> HTTPResponse:
    history = await _qa(request).versions.history(QaSheet)
    return response.json({
        "current": {"version": history[0].version, "name": history[0].name, "items": history[0].items,
                    "pass_mark": history[0].pass_mark},
        "history": [{"version": s.version, "name": s.name, "pass_mark": s.pass_mark, "created_by": s.created_by,
                     "created_at": s.created_at.isoformat()} for s in history],
    })


@bp.put("/api/qa/sheets")
@guarded(MANAGE, "只有班长可以修改评分表。")
async def save_sheet(request: Request, user: StaffUser) -> HTTPResponse:
    center = _qa(request)
    row = await center.versions.save_sheet(_body(request), user.username)
    async with center.sessions() as session:
        audit(session, user.id, "qa.sheet.save", f"qa_sheet:v{row.version}", name=row.name)
        await session.commit()
    return response.json({"version": row.version})


# -- 我的质检 and 复核 ----------------------------------------------------------------------------------
@bp.get("/api/qa/mine")
@guarded(("agent", "supervisor"), "只有坐席可以查看自己的质检结果。")
async def mine(request: Request, user: StaffUser) -> HTTPResponse:
    center = _qa(request)
    return response.json({"items": await center.desk.mine(user.id), "appeal_days": center.desk.appeal_days})


@bp.post("/api/qa/items/<item_id:int>/appeal")
@guarded(("agent", "supervisor"), "只有坐席可以申请复核。")
async def appeal(request: Request, user: StaffUser, item_id: int) -> HTTPResponse:
    return response.json(await _qa(request).desk.appeal(item_id, user, _body(request).get("reason")))


@bp.get("/api/qa/appeals")
@guarded(MANAGE, "只有班长可以处理复核。")
async def appeals(request: Request, user: StaffUser) -> HTTPResponse:
    return response.json({"items": await _qa(request).desk.appeals(request.args.get("status", "open"))})


@bp.post("/api/qa/appeals/<appeal_id:int>/decision")
@guarded(MANAGE, "只有班长可以处理复核。")
async def decide(request: Request, user: StaffUser, appeal_id: int) -> HTTPResponse:
    body = _body(request)
    result = await _qa(request).desk.decide(appeal_id, user, body.get("decision"), body.get("scores"),
                                            body.get("note"))
    return response.json(result)


# -- reports -------------------------------------------------------------------------------------------
QA_COLUMNS = [("bucket", "周期"), ("name", "坐席/技能组"), ("items", "质检条数"), ("avg_score", "平均分"),
              ("pass_rate", "合格率"), ("hits", "规则命中"), ("inspected", "人工质检")]
SERVICE_COLUMNS = [("bucket", "周期"), ("name", "坐席/技能组"), ("closed", "结束会话"), ("handed_off", "转人工"),
                   ("avg_wait_seconds", "平均排队(秒)"), ("abandoned", "排队放弃"),
                   ("avg_first_response_seconds", "平均首次响应(秒)"), ("avg_handle_seconds", "平均处理时长(秒)"),
                   ("avg_csat", "平均满意度"), ("csat_count", "评价数")]


@bp.get("/api/qa/reports/<kind:qa|service>")
@guarded(INSPECT)
async def report(request: Request, user: StaffUser, kind: str) -> HTTPResponse:
    center = _qa(request)
    args = request.args
    period, by = args.get("period", "day"), args.get("by", "none")
    async with center.sessions() as session:
        if kind == "qa":
            data = await qa_report(session, args.get("from"), args.get("to"), period, by, center.timezone)
        else:
            data = await service_report(session, args.get("from"), args.get("to"), period, by, center.timezone)
        if args.get("format") != "xlsx":
            return response.json(data)
        audit(session, user.id, "qa.export", f"report:{kind}", period=period, by=by, start=data["from"],
              end=data["to"])
        await session.commit()
    columns = QA_COLUMNS if kind == "qa" else SERVICE_COLUMNS
    rows = [[row.get(key) for key, _ in columns] for row in data["rows" if kind == "qa" else "served"]]
    title = "质检报表" if kind == "qa" else "服务报表"
    body = to_xlsx([label for _, label in columns], rows, title=title, widths=[12, 14] + [12] * (len(columns) - 2))
    name = quote(f"{title}_{data['from']}_{data['to']}.xlsx")
    return response.raw(body, content_type=XLSX_MIME,
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})


# -- content review ------------------------------------------------------------------------------------
@bp.get("/api/qa/content/flagged")
@guarded(MANAGE, "只有班长可以查看内容审核。")
async def flagged(request: Request, user: StaffUser) -> HTTPResponse:
    days = request.args.get("days", "7")
    if not str(days).isdigit() or not 1 <= int(days) <= 90:
        return error(400, "天数必须在 1 到 90 之间。", "bad_days")
    async with _qa(request).sessions() as session:
        items = await flagged_citizen_messages(session, int(days), masked=user.role not in UNMASKED)
    return response.json({"items": items})


@bp.post("/api/qa/screen")
@guarded(("agent", "inspector", "supervisor"))
async def screen(request: Request, user: StaffUser) -> HTTPResponse:
    text = _body(request).get("text")
    if not isinstance(text, str) or len(text) > 4000:
        raise Refusal(400, "请提供要检查的文字（不超过 4000 字）。", "bad_field")
    center = _qa(request)
    await center.content.refresh()
    return response.json({"hits": [{"word": h.word, "start": h.start, "end": h.end} for h in center.screen(text)]})

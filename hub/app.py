"""The Sanic application: pages, WebSockets, the REST API and Rasa's action webhook."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sanic import Request, Sanic, Websocket, response
from sanic.response import HTTPResponse

from core.config import Settings, load_settings
from core.secrets import action_token
from hub.auth import SESSION_COOKIE, StaffUser
from hub.csrf import WS_FORBIDDEN, CsrfGuard
from hub.forbidden import forbidden_html
from hub.services import Services, build_services

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"

# Which roles may open which staff page.
PAGE_ROLES: dict[str, tuple[str, ...]] = {
    "agent": ("agent", "supervisor"),
    "kb": ("kb_editor", "supervisor"),
    "supervisor": ("supervisor",),
    "tickets": ("agent", "supervisor"),
    "qa": ("inspector", "supervisor"),  # served by hub/routes/qa.py; listed so an inspector lands on 质检中心
}


def home_page(user: StaffUser) -> str:
    """Where a login without `next` lands: the first staff page the role may open."""
    return next((f"/{page}" for page, roles in PAGE_ROLES.items() if user.may(*roles)), "/chat")


def error(status: int, reason: str, code: str = "") -> HTTPResponse:
    return response.json({"reason": reason, "code": code}, status=status)


def services_of(request: Request) -> Services:
    return request.app.ctx.services


async def current_user(request: Request) -> StaffUser | None:
    return await services_of(request).accounts.from_token(request.cookies.get(SESSION_COOKIE))


def create_app(settings: Settings | None = None, name: str = "zwkf_hub") -> Sanic:
    settings = settings or load_settings()
    app = Sanic(name)
    app.config.WEBSOCKET_MAX_SIZE = 64 * 1024
    # notice a silently dead socket within ~16 s (an agent's presence goes offline within 30 s)
    app.config.WEBSOCKET_PING_INTERVAL = 8
    app.config.WEBSOCKET_PING_TIMEOUT = 8
    app.config.REQUEST_MAX_SIZE = 20 * 1024 * 1024  # KB imports (2,000-row spreadsheets)
    app.config.ACCESS_LOG = False
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.ctx.settings = settings
    app.static("/static", HERE / "static", name="static")
    csrf = CsrfGuard(settings)
    app.ctx.csrf = csrf

    @app.on_request
    async def refuse_forged_requests(request: Request) -> HTTPResponse | None:
        return csrf.check_request(request)

    @app.on_response
    async def hand_out_csrf_token(request: Request, reply: HTTPResponse) -> None:
        csrf.set_token_cookie(request, reply)

    @app.before_server_start
    async def start(app: Sanic) -> None:
        app.ctx.services = await build_services(settings)
        await app.ctx.services.bus.start()
        # build the answer engine before the first citizen asks (the cold build embeds the whole KB)
        app.add_task(app.ctx.services.answers.warm(), name="kb_warm_up")

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        await app.ctx.services.close()

    def page(name: str) -> HTTPResponse:
        return response.html((PAGES / f"{name}.html").read_text(encoding="utf-8"))

    @app.get("/")
    async def index(_request: Request) -> HTTPResponse:
        return response.redirect("/chat")

    @app.get("/chat")
    async def chat_page(_request: Request) -> HTTPResponse:
        return page("chat")

    @app.get("/<name:agent|kb|supervisor|tickets>")
    async def staff_page(request: Request, name: str) -> HTTPResponse:
        user = await current_user(request)
        if user is None:
            return response.redirect(f"/login?next={quote('/' + name)}")
        if not user.may(*PAGE_ROLES[name]):
            return response.html(forbidden_html(user, f"/{name}", home_page(user)), status=403)
        return page(name)

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        services = services_of(request)
        await services.redis.ping()
        return response.json({"status": "ok"})

    @app.get("/api/kb/entries")
    async def kb_entries(request: Request) -> HTTPResponse:
        user = await current_user(request)
        if user is None:
            return error(401, "请先登录。", "login_required")
        if not user.may(*PAGE_ROLES["kb"], "agent"):
            return error(403, "无权查看知识库。", "forbidden")
        status = request.args.get("status", "")
        if status and status not in ("draft", "published", "archived"):
            return error(400, "状态只能是 draft、published 或 archived。", "bad_status")
        items = await services_of(request).kb.search(request.args.get("q", "")[:100], status)
        return response.json({"items": [item.to_json() for item in items], "total": len(items)})

    webhook_token = action_token(settings.secret_key)

    @app.post("/actions/webhook")
    async def rasa_action(request: Request) -> HTTPResponse:
        if not hmac.compare_digest(request.args.get("token", ""), webhook_token):
            return error(403, "forbidden: Rasa must call with the hub's action token", "bad_token")
        try:
            payload: Any = request.json
        except Exception:
            return error(400, "invalid JSON", "bad_json")
        status, body = await services_of(request).actions.handle_http(payload)
        return response.json(body, status=status)

    @app.get("/actions/health")
    async def action_health(_request: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    @app.websocket("/ws/chat")
    async def chat_socket(request: Request, ws: Websocket) -> None:
        await services_of(request).web.serve(ws, request)

    @app.websocket("/ws/agent")
    async def agent_socket(request: Request, ws: Websocket) -> None:
        if not csrf.from_own_origin(request):  # another site's page riding the agent's cookie
            await ws.close(code=WS_FORBIDDEN, reason="origin not allowed")
            return
        user = await current_user(request)
        if user is None or not user.may(*PAGE_ROLES["agent"]):
            await ws.close(code=4401, reason="login required")
            return
        await services_of(request).console.serve(ws, user)

    from hub.routes import blueprints

    for blueprint in blueprints():
        app.blueprint(blueprint)
    return app

"""Logging in and out, who am I, and changing one's password.

- `GET /login`, `POST /api/login {username, password}` → the session cookie (HttpOnly, SameSite=Lax,
  Secure whenever hub.public_url is https) and where to go; `must_change: true` means the session
  only opens `/password` until the initial or reset password is changed.
- `POST /api/logout` ends every session of the user; `GET /api/me`.
- `GET /password`, `POST /api/password {current, new}`: every staff member; ends every other
  session of theirs and hands this browser a fresh one.

POST /api/login refuses a request whose Origin (or Referer) is another site (login CSRF: a page
elsewhere must not log a browser into an account of the attacker's choosing).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from core.errors import Refusal
from hub.app import PAGE_ROLES, current_user, error, home_page, services_of
from hub.auth import ROLE_NAMES, SESSION_COOKIE, StaffUser

bp = Blueprint("accounts")
PAGES = Path(__file__).resolve().parent.parent / "pages"


def client_ip(request: Request) -> str:
    """The caller's address: the proxy-reported one when Sanic trusts a proxy (PROXIES_COUNT /
    REAL_IP_HEADER), else the socket's peer."""
    return str(request.remote_addr or request.ip or "")[:64]


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def own_origins(request: Request) -> set[str]:
    """The hub's own origins: its public URL's and the one this request was addressed to."""
    origins = {f"{request.scheme}://{request.host}".lower()}
    public = _origin_of(request.app.ctx.settings.public_url)
    if public:
        origins.add(public)
    return origins


def same_origin(request: Request) -> bool:
    """True unless the browser says the request comes from another origin (no Origin and no Referer:
    not a browser's cross-site request, e.g. a script or a test client)."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if not referer:
            return True
        origin = _origin_of(referer)
    return origin.lower() in own_origins(request)


def secure_cookies(request: Request) -> bool:
    return request.app.ctx.settings.public_url.lower().startswith("https://")


def set_session_cookie(request: Request, reply: HTTPResponse, token: str) -> None:
    reply.add_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=secure_cookies(request), path="/"
    )


def landing(user: StaffUser) -> str:
    """Where a login without `next` lands: an administrator's is 用户管理."""
    return "/admin/users" if user.role == "admin" else home_page(user)


def me_json(user: StaffUser) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "role_name": ROLE_NAMES.get(user.role, user.role),
        "home": landing(user),
        "pages": [f"/{page}" for page, roles in PAGE_ROLES.items() if user.may(*roles)]
        + (["/admin/users", "/admin/audit"] if user.role == "admin" else []),
    }


def page(name: str) -> HTTPResponse:
    return response.html((PAGES / f"{name}.html").read_text(encoding="utf-8"))


def refusal(problem: Refusal) -> HTTPResponse:
    return error(problem.status, problem.reason, problem.code)


@bp.get("/login")
async def login_page(_request: Request) -> HTTPResponse:
    return page("login")


@bp.get("/password")
async def password_page(request: Request) -> HTTPResponse:
    if await services_of(request).accounts.pending_user(request.cookies.get(SESSION_COOKIE)) is None:
        return response.redirect("/login?next=/password")
    return page("password")


@bp.post("/api/login")
async def login(request: Request) -> HTTPResponse:
    if not same_origin(request):
        return error(403, "登录请求来自其他网站，已拒绝。请直接打开本系统的登录页面登录。", "cross_site")
    try:
        body = request.json
    except Exception:
        body = None
    if not isinstance(body, dict):
        return error(400, "请求格式错误。", "bad_json")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username.strip() or not password:
        return error(400, "请输入用户名和密码。", "bad_field")
    try:
        result = await services_of(request).accounts.login(username, password, client_ip(request))
    except Refusal as problem:
        return refusal(problem)
    body = me_json(result.user)
    body["must_change"] = result.must_change
    if result.must_change:
        body["home"] = "/password"
    reply = response.json(body)
    set_session_cookie(request, reply, result.token)
    return reply


@bp.post("/api/logout")
async def logout(request: Request) -> HTTPResponse:
    from core import audit

    services = services_of(request)
    user = await services.accounts.logout(request.cookies.get(SESSION_COOKIE))
    if user is not None:
        await audit.write(services.sessions, user, "logout", f"user:{user.id}", client_ip(request))
    reply = response.json({"ok": True})
    reply.delete_cookie(SESSION_COOKIE, path="/")
    return reply


@bp.get("/api/me")
async def me(request: Request) -> HTTPResponse:
    user = await current_user(request)
    if user is None:
        found = await services_of(request).accounts.pending_user(request.cookies.get(SESSION_COOKIE))
        if found is not None and found[1]:
            return error(403, "请先修改初始密码。", "password_change_required")
        return error(401, "请先登录。", "login_required")
    return response.json(me_json(user))


@bp.post("/api/password")
async def change_password(request: Request) -> HTTPResponse:
    services = services_of(request)
    found = await services.accounts.pending_user(request.cookies.get(SESSION_COOKIE))
    if found is None:
        return error(401, "请先登录。", "login_required")
    if not same_origin(request):
        return error(403, "请求来自其他网站，已拒绝。", "cross_site")
    try:
        body = request.json
    except Exception:
        body = None
    if not isinstance(body, dict):
        return error(400, "请求格式错误。", "bad_json")
    current, new = body.get("current"), body.get("new")
    if not isinstance(current, str) or not isinstance(new, str) or not current or not new:
        return error(400, "请输入当前密码和新密码。", "bad_field")
    user = found[0]
    try:
        token = await services.accounts.change_password(user.id, current, new, client_ip(request))
    except Refusal as problem:
        return refusal(problem)
    reply = response.json({"ok": True, "home": landing(user)})
    set_session_cookie(request, reply, token)
    return reply

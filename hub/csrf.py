"""Cross-site request forgery and WebSocket hijacking checks for staff requests (issue #12, Security 3).

A state-changing staff request (POST/PUT/PATCH/DELETE on /api/*) must
- come from the hub's own origin: its Origin (else Referer) is `hub.public_url`, the Host the request
  came to, or one of `hub.trusted_origins` (a request with neither header is not a browser's and
  passes on to the token);
- send a JSON body (or multipart on the import routes): a cross-site <form> or a `text/plain`
  fetch (both sent without a preflight) gets 415;
- carry the session's CSRF token in the X-CSRF-Token header (or a `csrf_token` form field). The
  token is an HMAC of the session token (core.secrets.csrf_token), handed to the pages in the
  readable `zwkf_csrf` cookie: a sibling site that can set cookies on the bureau's domain still
  cannot compute it.

The citizens' endpoints (/api/web/*, /api/feedback) and the channel webhooks have their own checks;
/api/login and /api/logout are left to the accounts' own checks (login CSRF belongs with the login).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from sanic import Request, response
from sanic.response import HTTPResponse

from core.config import Settings
from core.secrets import csrf_token
from hub.auth import SESSION_COOKIE

CSRF_COOKIE = "zwkf_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Citizens' endpoints (their own visitor checks); the login and logout (their own checks belong with
# the accounts: hub/auth.py).
EXEMPT_PREFIXES = ("/api/web/", "/api/feedback", "/api/login", "/api/logout")
# Staff routes that take a file (multipart/form-data) instead of JSON.
MULTIPART_ROUTES = frozenset({"/api/kb/imports", "/api/crm/imports"})
WS_FORBIDDEN = 4403  # the close code of a staff socket opened from another origin


def _refuse(status: int, reason: str, code: str) -> HTTPResponse:
    return response.json({"reason": reason, "code": code}, status=status)


def _origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-cased; None when it has none."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    netloc = parts.netloc.rsplit("@", 1)[-1].lower()
    default = {"http": ":80", "https": ":443"}[scheme]
    return f"{scheme}://{netloc.removesuffix(default)}"


def own_origins(settings: Settings) -> frozenset[str]:
    """The origins the hub's pages are served from, whatever Host a reverse proxy passes on."""
    extra = settings.get("hub.trusted_origins") or []
    if isinstance(extra, str):
        extra = extra.replace(",", " ").split()
    found = {_origin_of(settings.public_url)} | {_origin_of(str(item)) for item in extra}
    return frozenset(origin for origin in found if origin)


class CsrfGuard:
    """The checks with the hub's secret and origins read once per worker."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.secret_key
        self._origins = own_origins(settings)
        self._secure = settings.public_url.startswith("https://")

    def token(self, session: str) -> str:
        return csrf_token(self._secret, session)

    def from_own_origin(self, request: Request) -> bool:
        """True when the request's Origin (else Referer) is the hub's own, or it names none at all
        (not a browser). `Origin: null` (sandboxed frames, file: pages, some redirects) is foreign."""
        claimed = request.headers.get("origin")
        if claimed is None:
            referer = request.headers.get("referer")
            if not referer:
                return True
            claimed = referer
        origin = _origin_of(claimed) if claimed != "null" else None
        if origin is None:
            return False
        if origin in self._origins:
            return True
        host = (request.headers.get("host") or "").lower()
        # the Host the browser sent this request to: the page came from the same host and port
        return bool(host) and origin.split("://", 1)[1] == host.removesuffix(":80").removesuffix(":443")

    def check_request(self, request: Request) -> HTTPResponse | None:
        """The refusal for a forged state-changing staff request, or None to let it through."""
        if not _needs_check(request):
            return None
        if not self.from_own_origin(request):
            return _refuse(403, "请求来源不是本系统的页面，已拒绝。", "bad_origin")
        media = _media_type(request)
        multipart = media == "multipart/form-data" and request.path in MULTIPART_ROUTES
        if request.body and media != "application/json" and not multipart:
            return _refuse(415, "请求内容必须是 JSON（Content-Type: application/json）。", "unsupported_media_type")
        session = request.cookies.get(SESSION_COOKIE)
        if not session:
            return None  # nothing to forge: the route answers 401
        sent = request.headers.get(CSRF_HEADER) or ""
        if not sent and multipart:
            sent = str(request.form.get(CSRF_FIELD) or "")
        if not hmac.compare_digest(sent.encode(), self.token(session).encode()):
            return _refuse(403, "页面已过期或请求缺少安全令牌，请刷新页面后重试。", "bad_csrf_token")
        return None

    def set_token_cookie(self, request: Request, reply: HTTPResponse) -> None:
        """Give the page the CSRF token of the session it now holds: a login's new session, else the
        request's; a logout clears it. Readable by the page's script (not HttpOnly), sent to no other site."""
        given = reply.cookies.get_cookie(SESSION_COOKIE)
        if given is not None:
            session = given.value if given.max_age != 0 else ""
        else:
            session = request.cookies.get(SESSION_COOKIE) or ""
        if not session:
            if request.cookies.get(CSRF_COOKIE):
                reply.delete_cookie(CSRF_COOKIE, path="/")
            return
        token = self.token(session)
        if request.cookies.get(CSRF_COOKIE) == token and given is None:
            return
        reply.add_cookie(CSRF_COOKIE, token, httponly=False, samesite="Strict", secure=self._secure, path="/")


def _needs_check(request: Request) -> bool:
    path = request.path
    return (
        request.method in UNSAFE_METHODS
        and path.startswith("/api/")
        and not path.startswith(EXEMPT_PREFIXES)
    )


def _media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()

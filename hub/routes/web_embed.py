"""Whether the page embedding the chat widget may frame /chat: `GET /api/web/embed_check`, called by
hub/static/widget.js from the bureau's page (the browser names that page's origin in `Origin`).

A site not in `channels.web.allowed_origins` would get a grey, refused frame (CSP frame-ancestors):
the widget asks first, tells the site's owner in the browser console, and opens /chat in a new tab
instead. The answer carries CORS headers so any page may read it; it says nothing but yes or no.
"""

from __future__ import annotations

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from channels.web import OriginPolicy

bp = Blueprint("web_embed")


@bp.get("/api/web/embed_check")
async def embed_check(request: Request) -> HTTPResponse:
    origin = request.headers.get("origin")
    policy = OriginPolicy.from_settings(request.app.ctx.settings)
    allowed = policy.permits(origin, request.headers.get("host"), request.scheme)  # no Origin: the hub's own page
    reply = response.json({"allowed": allowed, "origin": origin or ""})
    reply.headers["Access-Control-Allow-Origin"] = origin or "*"
    reply.headers["Vary"] = "Origin"
    reply.headers["Cache-Control"] = "no-store"
    return reply

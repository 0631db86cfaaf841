"""Who may call a staff API route, and the JSON a refusal gets: one decorator the route modules share.

Not a blueprint (hub.routes.MODULES does not list it)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sanic import Request, response
from sanic.response import HTTPResponse

from hub.app import current_user, error

Handler = Callable[..., Awaitable[HTTPResponse]]


class Problem(Protocol):
    """A refusal a person can act on, raised by a domain package (KbError, TicketError, …)."""

    status: int
    reason: str
    code: str


def problem_response(problem: Problem) -> HTTPResponse:
    """`{"reason", "code"}` (+ `field` when the problem names one) with the problem's 4xx status."""
    body: dict[str, Any] = {"reason": problem.reason, "code": problem.code}
    field = getattr(problem, "field", "")
    if field:
        body["field"] = field
    return response.json(body, status=problem.status)


def staff_only(
    roles: tuple[str, ...], refusal: str, problems: tuple[type[Exception], ...] = ()
) -> Callable[[Handler], Handler]:
    """The route answers 401 unless someone is logged in and 403 (`refusal`) unless they hold one of
    `roles` (an admin holds every role: StaffUser.may); the handler gets the user after the request.
    One of the `problems` the handler raises becomes its 4xx (problem_response)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            user = await current_user(request)
            if user is None:
                return error(401, "请先登录。", "login_required")
            if not user.may(*roles):
                return error(403, refusal, "forbidden")
            try:
                return await handler(request, user, *args, **kwargs)
            except problems as problem:
                return problem_response(problem)  # type: ignore[arg-type]

        return guarded

    return decorate

"""The one shape of a refusal a person can act on: an HTTP status, a reason in Chinese, a code.

Domain packages raise their own subclass (``KbError``, ``MergeError``, ``TicketError``,
``SpreadsheetError``) so callers can catch one package's refusals; routes turn any of them
into ``{status, reason, code}`` the same way.
"""

from __future__ import annotations


class Refusal(ValueError):
    """Bad input or a forbidden change, refused before anything was written."""

    def __init__(self, status: int, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code

"""The page a member of staff sees when their role may not open a staff page: styled like the others,
saying whose account it is, with a way back to the page they may use and a way to switch accounts."""

from __future__ import annotations

from html import escape
from pathlib import Path

from hub.auth import ROLE_NAMES, StaffUser

PAGES = Path(__file__).resolve().parent / "pages"
PAGE_NAMES = {
    "/agent": "坐席工作台", "/kb": "知识库", "/supervisor": "班长看板", "/tickets": "工单", "/chat": "在线咨询",
}


def forbidden_html(user: StaffUser, path: str, home: str) -> str:
    values = {
        "home": home,
        "home_name": PAGE_NAMES.get(home, "首页"),
        "page_name": PAGE_NAMES.get(path, ""),
        "who": f"{user.display_name or user.username}，{ROLE_NAMES.get(user.role, user.role)}",
        "path": path,
    }
    html = (PAGES / "forbidden.html").read_text(encoding="utf-8")
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", escape(value))
    return html

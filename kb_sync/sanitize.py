"""A small allow-list HTML sanitiser for KB answers (links, images, simple formatting).

Anything not on the list is dropped: unknown tags lose their markup but keep their text,
``script``/``style``/``iframe``… lose their content too, attributes other than the listed
ones (every ``on*`` handler, ``style``…) are removed, and URLs must be http(s), mailto,
tel or site-relative. The output is stable: sanitising it again gives the same string.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

ALLOWED_TAGS: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title", "target"}),
    "img": frozenset({"src", "alt", "title", "width", "height"}),
    "p": frozenset(),
    "br": frozenset(),
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ul": frozenset(),
    "ol": frozenset(),
    "li": frozenset(),
    "blockquote": frozenset(),
    "h3": frozenset(),
    "h4": frozenset(),
}
VOID_TAGS = frozenset({"br", "img"})
# their content is dropped along with them
DROP_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math", "head",
                          "title", "textarea", "select", "frame", "frameset", "applet"})
URL_ATTRS = frozenset({"href", "src"})
_SAFE_URL = re.compile(r"^(?:https?://|mailto:|tel:|/(?!/)|#)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_NUMBER = re.compile(r"^\d{1,4}%?$")


def safe_url(value: str) -> str | None:
    """The URL when its scheme is allowed (control characters and blanks removed first), else None."""
    url = _CONTROL.sub("", value or "")
    return url if url and _SAFE_URL.match(url) else None


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skip = 0  # depth inside a DROP_CONTENT element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], closing: bool) -> None:
        if tag in DROP_CONTENT:
            if not closing:
                self.skip += 1
            return
        if self.skip or tag not in ALLOWED_TAGS:
            return
        kept: list[str] = []
        allowed = ALLOWED_TAGS[tag]
        seen: set[str] = set()
        for name, value in attrs:
            name = name.lower()
            if name not in allowed or name in seen or value is None:
                continue
            if name in URL_ATTRS:
                value = safe_url(value)
                if value is None:
                    continue
            elif name in ("width", "height") and not _NUMBER.match(value.strip()):
                continue
            elif name == "target":
                value = "_blank"
            seen.add(name)
            kept.append(f' {name}="{escape(value, quote=True)}"')
        if tag == "a" and "href" in seen:
            kept.append(' rel="noopener noreferrer"')
        if tag == "img" and "src" not in seen:
            return  # an image without a safe source is nothing
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_CONTENT:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip or tag not in ALLOWED_TAGS or tag in VOID_TAGS or tag not in self.open:
            return
        while self.open:
            top = self.open.pop()
            self.out.append(f"</{top}>")
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(escape(data, quote=False))

    def close_all(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out)


def sanitize_html(html: str) -> str:
    """Safe HTML for an answer: only the allow-listed tags, attributes and URL schemes survive."""
    if not html:
        return ""
    cleaner = _Cleaner()
    cleaner.feed(html)
    return cleaner.close_all().strip()


_TAG = re.compile(r"<[^>]*>")


def plain_text(html: str) -> str:
    """The visible text of sanitised answer HTML (for channels that cannot show HTML, and for search)."""
    from html import unescape

    text = re.sub(r"<br\s*/?>|</p>|</li>", "\n", html or "", flags=re.IGNORECASE)
    return unescape(_TAG.sub("", text)).strip()

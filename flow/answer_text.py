"""The forms of one KB answer that travel with the bot's reply to the channels.

- the message text: the answer as plain text, with each link's address kept after its words
  (WeChat, Telegram and the transcript cannot show HTML, but a citizen can still open a link);
- `answer_html` in the message meta: the editor's rich text, already sanitised by
  kb_sync.sanitize (the web chat renders it, checking it again on the page);
- `short_answer` in the meta when the editor wrote one: channels with small screens or a
  voice (WeChat, Telegram, the phone line) send that instead of the full answer.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

BLOCKS = frozenset({"p", "li", "h3", "h4", "blockquote", "ul", "ol"})


class _LinkText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._href: list[str | None] = []
        self._link_start = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self._newline()
            self.out.append("• ")
        elif tag in BLOCKS:
            self._newline()
        elif tag == "a":
            self._href.append(values.get("href"))
            self._link_start = len(self.out)
        elif tag == "img" and values.get("src"):
            alt = (values.get("alt") or "").strip()
            self.out.append(f"[图片{'：' + alt if alt else ''}] {values['src']} ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href:
            href = self._href.pop()
            words = "".join(self.out[self._link_start:]).strip()
            if href and href not in words and not href.startswith("#"):
                self.out.append(f"（{href}）")
        elif tag in BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def _newline(self) -> None:
        if self.out and not "".join(self.out[-2:]).endswith("\n"):
            self.out.append("\n")


def text_with_links(html: str) -> str:
    """The visible text of sanitised answer HTML, links and images kept as their addresses;
    "" when it has neither (the entry's plain text then serves as it is)."""
    if not html or ("<a " not in html and "<img " not in html):
        return ""
    parser = _LinkText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    return "\n".join(line for line in lines if line).strip()


def answer_forms(found: Any) -> dict[str, str]:
    """The meta fields a KB answer adds to the bot's message (see the module docstring)."""
    forms: dict[str, str] = {}
    html = (getattr(found, "answer_html", "") or "").strip()
    if html and "<" in html:
        forms["answer_html"] = html
    short = (getattr(found, "short_answer", "") or "").strip()
    if short:
        forms["short_answer"] = short
    return forms

"""One multi-pattern word matcher (Aho-Corasick, pyahocorasick) for every word list of the hub: QA's
服务禁语 and citizen anger words, and live content review of an agent's reply before it is sent.

Matching is case- and width-insensitive (NFKC + casefold), so ＡＢＣ, abc and ABC are one word; a
hit reports the word as listed and its position in the original text."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick


def normalise(text: str) -> str:
    """NFKC + casefold, one character for one character (positions stay usable): the whole text at
    once when that keeps its length (nearly always), else character by character."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if len(folded) == len(text):
        return folded
    return "".join(_fold(ch) for ch in text)


def _fold(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch).casefold()
    return folded if len(folded) == 1 else ch.casefold()[:1] or ch


@dataclass(frozen=True)
class WordHit:
    word: str  # as written in the list
    tag: str  # which list it came from (e.g. "forbidden", "anger")
    start: int
    end: int  # exclusive


class WordMatcher:
    """Words with a tag each; `find` returns every occurrence (overlaps included), in text order."""

    def __init__(self, words: Iterable[tuple[str, str]]) -> None:
        self._automaton = ahocorasick.Automaton()
        self.size = 0
        for word, tag in words:
            key = normalise(word.strip())
            if not key:
                continue
            entry = self._automaton.get(key, None)
            tags = entry[1] if entry else ()
            if tag not in tags:
                self._automaton.add_word(key, (word.strip(), (*tags, tag), len(key)))
                self.size += 0 if entry else 1
        if self.size:
            self._automaton.make_automaton()

    def find(self, text: str, tags: Iterable[str] | None = None) -> list[WordHit]:
        if not self.size or not text:
            return []
        wanted = set(tags) if tags is not None else None
        hits: list[WordHit] = []
        for end, (word, word_tags, length) in self._automaton.iter(normalise(text)):
            for tag in word_tags:
                if wanted is None or tag in wanted:
                    hits.append(WordHit(word, tag, end - length + 1, end + 1))
        hits.sort(key=lambda hit: (hit.start, hit.end))
        return hits

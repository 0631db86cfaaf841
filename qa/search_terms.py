"""Search terms for Chinese transcripts: character bigrams of every Han run (and the lone character
of a one-character run), lower-cased Latin words; long digit runs (phone and ID numbers) are left
out so that search never reveals them. A query matches an item holding all the query's terms."""

from __future__ import annotations

import re

_RUNS = re.compile(r"[\u4e00-\u9fff]+|[A-Za-z]+|\d+")


def terms(text: str) -> list[str]:
    found: dict[str, None] = {}
    for run in _RUNS.findall(text):
        if run.isdigit() and len(run) > 6:
            continue
        if "\u4e00" <= run[0] <= "\u9fff":
            if len(run) == 1:
                found.setdefault(run)
            for i in range(len(run) - 1):
                found.setdefault(run[i:i + 2])
        else:
            found.setdefault(run.lower())
    return list(found)

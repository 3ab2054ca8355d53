"""Bounds on JSON text checked before it is parsed (json.loads recurses once per level).

Python's json module raises RecursionError near 1,000 levels, after it has spent the
stack; a message of 256 KB can hold far more.  We count the levels first, at C speed
(regular expressions), and refuse anything deeper than a message of the protocol
ever is.
"""

from __future__ import annotations

import re
from typing import Final, Literal

#: Deepest nesting any message of docs/protocol.md needs is 3 (a stroke's points).
MAX_JSON_DEPTH: Final = 16

_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: one step per run
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR: Final = re.compile(r"\[\]|\{\}")


def nesting(text: str, max_depth: int = MAX_JSON_DEPTH) -> Literal["ok", "too-deep", "not-json"]:
    """Whether the arrays and objects of `text` nest at most `max_depth` deep.

    "not-json" when its brackets (outside strings) do not pair up: no JSON text
    does that, so it need not be parsed either.  Each pass removes the innermost
    empty pairs, so `max_depth` passes empty any balanced text that deep.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if re.search(r"[\[{]{%d}" % (max_depth + 1), brackets):
        return "too-deep"  # that many openers in a row, found in one pass
    for _ in range(max_depth):
        if not brackets:
            return "ok"
        inner = _EMPTY_PAIR.sub("", brackets)
        if len(inner) == len(brackets):
            return "not-json"  # nothing more to take away: they do not pair up
        brackets = inner
    return "ok" if not brackets else "too-deep"

"""JSON nesting counted before parsing (signaling/json_bounds.py): issue 17 item 7."""

from __future__ import annotations

import json

import pytest

from signaling.json_bounds import MAX_JSON_DEPTH, nesting

CASES = [
    ('{"type": "whiteboard-stroke", "points": [[0.1, 0.2], [0.3, 0.4]]}', "ok"),
    ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "ok"),
    ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "too-deep"),
    ("[{" * 9 + "}]" * 9, "too-deep"),  # 18 levels, never 17 openers in a row
    ("[" * 1100 + "]" * 1100, "too-deep"),  # what raised RecursionError in json.loads
    ('{"text": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"]]]"}', "ok"),  # brackets inside a string
    ("[" + ",".join(["[]"] * 100_000) + "]", "ok"),
    ("{not json", "not-json"),
    ("[}", "not-json"),
    ("[[]" * 10_000, "not-json"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_nesting(text: str, expected: str) -> None:
    assert nesting(text) == expected
    if expected == "ok":
        json.loads(text)  # what is let through parses

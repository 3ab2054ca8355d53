"""Validation of client messages (docs/protocol.md)."""

from __future__ import annotations

import json

import pytest

from signaling.call.protocol import CLIENT_MESSAGES, parse_client_message
from signaling.errors import ProtocolError

LIMIT = 4096


@pytest.mark.parametrize(
    ("text", "kind", "fields"),
    [
        ('{"type":"join"}', "join", {}),
        ('{"type":"ready","id":"r1"}', "ready", {}),
        ('{"type":"offer","sdp":"v=0"}', "offer", {"sdp": "v=0"}),
        ('{"type":"hangup"}', "hangup", {}),
        ('{"type":"tracks","mic":false,"camera":true,"screen":false}', "tracks", {"mic": False, "camera": True, "screen": False}),
    ],
)
def test_valid_messages(text: str, kind: str, fields: dict[str, str]) -> None:
    msg = parse_client_message(text, LIMIT)
    assert (msg.type, msg.fields) == (kind, fields)


@pytest.mark.parametrize(
    ("text", "code", "names"),
    [
        ("not json", "bad-json", "JSON"),
        ("[1,2]", "bad-json", "object"),
        ('{"sdp":"x"}', "unknown-type", "missing"),
        ('{"type":"explode"}', "unknown-type", "explode"),
        ('{"type":42}', "unknown-type", "missing"),
        ('{"type":"offer"}', "bad-message", "sdp"),
        ('{"type":"offer","sdp":5}', "bad-message", "offer.sdp"),
        ('{"type":"join","extra":true}', "bad-message", "extra"),
        ('{"type":"join","id":7}', "bad-message", "id"),
        ('{"type":"tracks","mic":1,"camera":true,"screen":false}', "bad-message", "tracks.mic"),
        ('{"type":"tracks","mic":true}', "bad-message", "camera"),
        ('{"type":"join","id":"' + "x" * 65 + '"}', "bad-message", "id"),
        (json.dumps({"type": "offer", "sdp": "x" * LIMIT}), "too-large", str(LIMIT)),
    ],
)
def test_bad_messages_name_the_problem(text: str, code: str, names: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(text, LIMIT)
    assert info.value.code == code
    assert names in info.value.message


def test_every_client_message_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for kind in CLIENT_MESSAGES:
        assert f"| `{kind}` |" in doc
    for kind in ("welcome", "state", "answer", "media", "error", "replaced"):
        assert f"| `{kind}` |" in doc

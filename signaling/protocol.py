"""Validation of client WebSocket messages (docs/protocol.md is the reference)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError

PROTOCOL_VERSION = 1

# type -> {field: python type}; every field listed is required
CLIENT_MESSAGES: dict[str, dict[str, type]] = {
    "join": {},
    "ready": {},
    "offer": {"sdp": str},
    "hangup": {},
    "tracks": {"mic": bool, "camera": bool, "screen": bool},
}

MAX_ID_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ClientMessage:
    type: str
    fields: dict[str, Any]
    id: str | None = None


def parse_client_message(text: str, max_bytes: int) -> ClientMessage:
    """Parse and validate one text frame, or raise ProtocolError naming the problem."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError("too-large", f"message larger than {max_bytes} bytes")
    try:
        data = json.loads(text)
    except ValueError:
        raise ProtocolError("bad-json", "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad-json", "message must be a JSON object")
    msg_id = data.pop("id", None)
    if msg_id is not None and (not isinstance(msg_id, str) or len(msg_id) > MAX_ID_LENGTH):
        raise ProtocolError("bad-message", f"'id' must be a string of at most {MAX_ID_LENGTH} characters")
    kind = data.pop("type", None)
    if not isinstance(kind, str) or kind not in CLIENT_MESSAGES:
        shown = kind if isinstance(kind, str) else "(missing)"
        raise ProtocolError("unknown-type", f"unknown message type {shown[:40]!r}")
    schema = CLIENT_MESSAGES[kind]
    for name in data:
        if name not in schema:
            raise ProtocolError("bad-message", f"'{kind}' has unknown field {name[:40]!r}")
    for name, expected in schema.items():
        if name not in data:
            raise ProtocolError("bad-message", f"'{kind}' is missing field '{name}'")
        if not isinstance(data[name], expected):
            raise ProtocolError("bad-message", f"'{kind}.{name}' must be a {expected.__name__}")
    return ClientMessage(type=kind, fields=data, id=msg_id)


def error_message(exc: ProtocolError, ref_type: str | None = None, ref_id: str | None = None) -> dict[str, Any]:
    """The `error` reply for a refused message."""
    reply: dict[str, Any] = {"type": "error", "code": exc.code, "message": exc.message}
    if ref_type is not None:
        reply["ref_type"] = ref_type
    if ref_id is not None:
        reply["ref_id"] = ref_id
    return reply

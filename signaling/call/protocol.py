"""Validation of client WebSocket messages (docs/protocol.md is the reference)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ProtocolError
from ..json_bounds import MAX_JSON_DEPTH, nesting

PROTOCOL_VERSION = 1

Types = type | tuple[type, ...]
NUMBER: Final = (int, float)  # JSON numbers; booleans are refused although bool is an int
NULL: Final = type(None)

# the connection test's result inside `readiness` (docs/connection-test.md)
NET_TEST: dict[str, Types] = {
    "verdict": str,
    "reason": (str, NULL),
    "rtt_ms": (*NUMBER, NULL),
    "jitter_ms": (*NUMBER, NULL),
    "loss_pct": (*NUMBER, NULL),
    "up_kbps": (*NUMBER, NULL),
    "down_kbps": (*NUMBER, NULL),
    "relay": (bool, NULL),
}

# type -> {field: python type(s)}; every field listed is required
CLIENT_MESSAGES: dict[str, dict[str, Types]] = {
    "join": {},
    "ready": {},
    "offer": {"sdp": str},
    "hangup": {},
    "tracks": {"mic": bool, "camera": bool, "screen": bool},
    "probe-offer": {"sdp": str},
    "readiness": {"mic": str, "camera": str, "test": (dict, NULL)},
    "record": {"on": bool},
    "recording-consent": {"recording": str, "accept": bool},
    "recording-seen": {"recording": str},
    "consent": {"decision": str, "version": str},
    "chat": {"text": str},
    # the whiteboard (signaling/call/whiteboard.py checks the values: ids, colours, coordinates, pages)
    "whiteboard-open": {"open": bool},
    "whiteboard-stroke": {"stroke": str, "page": int, "color": str, "width": NUMBER, "points": list, "end": bool},
    "whiteboard-erase": {"strokes": list},
    "whiteboard-undo": {},
    "whiteboard-redo": {},
    "whiteboard-clear": {},
    "whiteboard-page": {"page": int},
    "whiteboard-background-remove": {},
    "whiteboard-save": {},
    "pointer": {"x": (*NUMBER, NULL), "y": (*NUMBER, NULL)},
}

# fields holding an object: its own schema, checked the same way
NESTED: dict[tuple[str, str], dict[str, Types]] = {("readiness", "test"): NET_TEST}

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
    depth = nesting(text)
    if depth == "too-deep":
        raise ProtocolError("too-deep", f"message nested deeper than {MAX_JSON_DEPTH} levels")
    if depth == "not-json":
        raise ProtocolError("bad-json", "message is not valid JSON")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad-json", "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad-json", "message must be a JSON object")
    msg_id = data.pop("id", None)
    if msg_id is not None and (not isinstance(msg_id, str) or len(msg_id) > MAX_ID_LENGTH):
        raise ProtocolError("bad-message", f"'id' must be a string of at most {MAX_ID_LENGTH} characters")
    kind = data.pop("type", None)
    try:
        if not isinstance(kind, str) or kind not in CLIENT_MESSAGES:
            shown = kind if isinstance(kind, str) else "(missing)"
            raise ProtocolError("unknown-type", f"unknown message type {shown[:40]!r}")
        _check_fields(kind, data, CLIENT_MESSAGES[kind])
        for (owner, name), schema in NESTED.items():
            if owner == kind and isinstance(data.get(name), dict):
                _check_fields(f"{kind}.{name}", data[name], schema)
    except ProtocolError as exc:
        # the error names the message it refuses, as the protocol promises
        exc.ref_type = kind if isinstance(kind, str) and kind in CLIENT_MESSAGES else None
        exc.ref_id = msg_id
        raise
    return ClientMessage(type=kind, fields=data, id=msg_id)


def _check_fields(where: str, data: dict[str, Any], schema: dict[str, Types]) -> None:
    for name in data:
        if name not in schema:
            raise ProtocolError("bad-message", f"'{where}' has unknown field {name[:40]!r}")
    for name, expected in schema.items():
        if name not in data:
            raise ProtocolError("bad-message", f"'{where}' is missing field '{name}'")
        if not _is(data[name], expected):
            raise ProtocolError("bad-message", f"'{where}.{name}' must be {_describe(expected)}")


def _is(value: Any, expected: Types) -> bool:
    allowed = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, allowed)


_NAMES = {str: "a string", bool: "a boolean", int: "a number", float: "a number", dict: "an object", NULL: "null"}


def _describe(expected: Types) -> str:
    if not isinstance(expected, tuple):
        return f"a {expected.__name__}"
    allowed = expected if isinstance(expected, tuple) else (expected,)
    names = list(dict.fromkeys(_NAMES.get(t, t.__name__) for t in allowed))
    return " or ".join(names)


def error_message(exc: ProtocolError, ref_type: str | None = None, ref_id: str | None = None) -> dict[str, Any]:
    """The `error` reply for a refused message."""
    reply: dict[str, Any] = {"type": "error", "code": exc.code, "message": exc.message}
    if ref_type is not None:
        reply["ref_type"] = ref_type
    if ref_id is not None:
        reply["ref_id"] = ref_id
    return reply

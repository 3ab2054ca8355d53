"""A seeded WebSocket fuzzer built from docs/protocol.md's client message tables.

Shared by tests/integration/test_ws_fuzz.py (a few thousand messages) and
benchmarks/ws_fuzz.py (100,000 and more).  The message types, their fields and a
hint of each field's kind are read from the documentation, so a message added to
the protocol is fuzzed as soon as it is documented (and the test checks that the
documentation and signaling/protocol.py list the same messages).

Every frame the server sends back is checked: a JSON object with a `type`; an
`error` has a documented `code` (never `internal`) and a `message`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

_FIELD = re.compile(r"`([a-z_]+)`(?=\s*[:,]|\s*$)")
_QUOTED = re.compile(r'`"([^"`]+)"`')
_BRACED = re.compile(r"`\{([a-z_, ]+)\}`|\{([a-z_, ]+)\}")


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    kind: str  # bool, str, int, number, list, object
    choices: tuple[str, ...] = ()  # documented string values
    members: tuple[str, ...] = ()  # an object's documented field names
    nullable: bool = False


def _kind(hint: str) -> str:
    hint = hint.lower()
    for words, kind in ((("boolean",), "bool"), (("integer", "page"), "int"), (("number",), "number"),
                        (("list", "flat", "["), "list"), (("{",), "object")):
        if any(w in hint for w in words):
            return kind
    return "str"


def _fields(cell: str) -> tuple[Field, ...]:
    """The fields named in a table cell, each with the kind its description suggests."""
    found = list(_FIELD.finditer(cell))
    fields: list[Field] = []
    hint_after = ""
    # a description applies to the names listed just before it: `mic`, `camera`: booleans
    for i in range(len(found) - 1, -1, -1):
        end = found[i + 1].start() if i + 1 < len(found) else len(cell)
        hint = cell[found[i].end():end]
        if hint.strip(" ,"):
            hint_after = hint
        braced = _BRACED.search(hint_after)
        members = tuple(m.strip() for m in (braced.group(1) or braced.group(2)).split(",")) if braced else ()
        fields.append(Field(found[i].group(1), _kind(hint_after), tuple(_QUOTED.findall(hint_after)), members,
                            "null" in hint_after))
    return tuple(reversed(fields))


def client_messages(doc: Path = DOC) -> dict[str, tuple[Field, ...]]:
    """type -> fields, from every client → server table of the documentation."""
    messages: dict[str, tuple[Field, ...]] = {}
    client_table = False
    for line in doc.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells[:2] == ["type", "fields"]:
            client_table = cells[-1] != "when"  # server → client tables end with "when"
        elif not cells:
            client_table = False
        elif client_table and cells[0].startswith("`"):
            messages[cells[0].strip("`")] = () if cells[1] == "—" else _fields(cells[1])
    return messages


def error_codes(doc: Path = DOC) -> frozenset[str]:
    """The error codes the documentation lists."""
    text = doc.read_text()
    table = text[text.index("Error codes:"):]
    return frozenset(re.findall(r"^\| `([a-z-]+)` \|", table.split("\n\n", 2)[1], re.M))


class MessageGenerator:
    """Frames for one socket: well-formed messages, mutated ones and junk, from one seed."""

    #: types sent rarely: their valid form costs the server real work (peer connections, recordings,
    #: PNGs) or ends the call (hangup), after which most messages are only out of order
    COSTLY = frozenset({"offer", "probe-offer", "record", "whiteboard-save", "hangup"})

    def __init__(self, seed: int, messages: dict[str, tuple[Field, ...]], max_bytes: int) -> None:
        self.rng = random.Random(seed)
        self.messages = messages
        self.types = sorted(messages)
        self.weights = [0.15 if t in self.COSTLY else 1.0 for t in self.types]
        self.max_bytes = max_bytes

    def _string(self, field: Field | None = None) -> str:
        r = self.rng
        pick = r.random()
        if field is not None and field.choices and pick < 0.5:
            return r.choice(field.choices)
        if pick < 0.6:
            return "".join(r.choice("abcdef0123456789") for _ in range(r.choice((1, 8, 32, 33, 64, 65))))
        if pick < 0.7:
            return "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" * r.randint(0, 3)
        if pick < 0.8:
            return "".join(chr(r.choice((r.randint(0, 0x1F), r.randint(0x20, 0x7E), r.randint(0xA0, 0xD7FF),
                                         r.randint(0xE000, 0x10FFFF)))) for _ in range(r.randint(0, 40)))
        if pick < 0.85:
            return "\ud800" + "x\udfff"  # lone surrogates: valid JSON escapes, not encodable text
        if pick < 0.9:
            return "x" * r.choice((0, 3999, 4000, 4001, 20000))
        return r.choice(("", " ", "\r\n\t", "<script>alert(1)</script>", "'; DROP TABLE document; --", "../../etc/passwd"))

    def _number(self) -> Any:
        return self.rng.choice((0, 1, -1, 0.5, 0.01, 0.004, -0.0, 1e-300, 1e308, 2**53 + 1, 10**30, -10**30, 3.7, 0.999999))

    def _value(self, kind: str, field: Field | None = None) -> Any:
        r = self.rng
        if field is not None and field.nullable and r.random() < 0.2:
            return None
        if kind == "bool":
            return r.random() < 0.5
        if kind == "int":
            return r.choice((0, 1, 2, -1, 99999, 2**31, 2**63, 10**30))
        if kind == "number":
            return self._number()
        if kind == "list":
            size = r.choice((0, 1, 2, 3, 4, 10, 101, 2001, 5000))
            item = r.choice(("number", "str", "list", "mixed"))
            if item == "number":
                return [r.random() for _ in range(size)]
            if item == "str":
                return [self._string() for _ in range(min(size, 200))]
            if item == "list":
                return [[r.random(), r.random()] for _ in range(min(size, 500))]
            return [self._value(r.choice(("bool", "str", "number", "object"))) for _ in range(min(size, 50))]
        if kind == "object":
            members = field.members if field is not None and field.members else ("a", "b")
            obj = {m: self._value(r.choice(("str", "number", "bool"))) for m in members if r.random() < 0.95}
            if r.random() < 0.1:
                obj["extra"] = 1
            return obj
        return self._string(field)

    def _message(self) -> dict[str, Any]:
        r = self.rng
        kind = r.choices(self.types, self.weights)[0]
        msg: dict[str, Any] = {"type": kind}
        for field in self.messages[kind]:
            msg[field.name] = self._value(field.kind, field)
        mutation = r.random()
        names = [f.name for f in self.messages[kind]]
        if mutation < 0.15 and names:
            msg[r.choice(names)] = self._value(r.choice(("bool", "str", "int", "number", "list", "object")))
        elif mutation < 0.2 and names:
            del msg[r.choice(names)]
        elif mutation < 0.25:
            msg[r.choice(("extra", "__proto__", "type2", "sdp", "x"))] = self._value("str")
        elif mutation < 0.3:
            msg["type"] = r.choice((self._string(), None, 1, [], kind.upper(), kind + " "))
        elif mutation < 0.35:
            msg.pop("type")
        if r.random() < 0.3:
            msg["id"] = r.choice((self._string(), 7, None, "x" * 65, "ok-id"))
        return msg

    def _junk(self) -> str | bytes:
        r = self.rng
        pick = r.randrange(10)
        if pick == 0:
            return "[" * r.choice((17, 100, 1100, 50000)) + "]" * r.choice((0, 17, 1100))
        if pick == 1:
            return '{"type": "chat", "text": ' + "{\"a\":" * r.choice((16, 17, 1100)) + "1" + "}" * 1100 + "}"
        if pick == 2:
            return json.dumps(self._message())[: r.randint(0, 40)]  # cut short
        if pick == 3:
            return r.choice(("null", "1", '"x"', "[]", "true", "NaN", "Infinity", "-Infinity", "1e999"))
        if pick == 4:
            return bytes(r.randrange(256) for _ in range(r.randint(0, 64)))  # a binary frame
        if pick == 5:
            return '{"type": "chat", "text": "' + "y" * (self.max_bytes + r.choice((-100, 1, 1000))) + '"}'
        if pick == 6:
            return '{"type": "chat", "type": "join", "text": "dup"}'
        if pick == 7:
            return '{"type": "tracks", "mic": true, "camera": true, "screen": true, "mic": "x"}'
        if pick == 8:
            return "\ufeff" + json.dumps({"type": "join"})
        return json.dumps({"type": "readiness", "mic": "on", "camera": "on", "test": {"verdict": "good"}})

    def frame(self) -> str | bytes:
        """The next frame to send."""
        if self.rng.random() < 0.1:
            return self._junk()
        return json.dumps(self._message(), allow_nan=True)


@dataclasses.dataclass
class FuzzCounts:
    sent: int = 0
    replies: int = 0
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    closes: int = 0
    ill_formed: list[str] = dataclasses.field(default_factory=list)

    def add(self, other: FuzzCounts) -> None:
        self.sent += other.sent
        self.replies += other.replies
        self.errors.update(other.errors)
        self.closes += other.closes
        self.ill_formed.extend(other.ill_formed)


def check_reply(data: str, codes: frozenset[str], counts: FuzzCounts) -> str | None:
    """Count one server frame; return the ref_id of an error, if any."""
    counts.replies += 1
    try:
        reply = json.loads(data)
    except ValueError:
        counts.ill_formed.append(data[:200])
        return None
    if not isinstance(reply, dict) or not isinstance(reply.get("type"), str):
        counts.ill_formed.append(data[:200])
        return None
    if reply["type"] != "error":
        return None
    code = reply.get("code")
    counts.errors[str(code)] += 1
    if code not in codes or code == "internal" or not isinstance(reply.get("message"), str):
        counts.ill_formed.append(data[:200])
    ref = reply.get("ref_id")
    return ref if isinstance(ref, str) else None


async def fuzz_link(link: str, generator: MessageGenerator, count: int, codes: frozenset[str], *,
                    sync_every: int = 50, timeout: float = 20.0) -> FuzzCounts:
    """Send `count` frames to the link's socket (reopened whenever the server closes it).

    Every `sync_every` frames a marker (a chat message without text, with an id) is sent and its
    error awaited, so the server keeps up and every reply before it is counted.
    """
    counts = FuzzCounts()
    url = link.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session:
        ws: aiohttp.ClientWebSocketResponse | None = None
        marker = 0
        while counts.sent < count:
            if ws is None or ws.closed:
                if ws is not None:
                    counts.closes += 1
                ws = await session.ws_connect(url, max_msg_size=0)
            batch = min(sync_every, count - counts.sent)
            try:
                for _ in range(batch):
                    frame = generator.frame()
                    if isinstance(frame, bytes):
                        await ws.send_bytes(frame)
                    else:
                        await ws.send_str(frame)
                    counts.sent += 1
                marker += 1
                wanted = f"sync-{marker}"
                await ws.send_str(json.dumps({"type": "chat", "id": wanted}))  # refused: no text
                async with asyncio.timeout(timeout):
                    while True:
                        msg = await ws.receive()
                        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                                        aiohttp.WSMsgType.ERROR):
                            await ws.close()
                            break
                        if msg.type is aiohttp.WSMsgType.TEXT and check_reply(msg.data, codes, counts) == wanted:
                            counts.errors["bad-message"] -= 1  # the marker's own error
                            break
            except (aiohttp.ClientConnectionError, ConnectionResetError):
                await ws.close()
        if ws is not None:
            await ws.close()
    return counts

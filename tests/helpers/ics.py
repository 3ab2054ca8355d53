"""A tiny strict iCalendar (RFC 5545) reader for the tests: it refuses what a lax one would let through."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Component:
    """One BEGIN/END block: its properties (name -> list of (params, value)) and sub-components."""

    name: str
    properties: dict[str, list[tuple[dict[str, str], str]]] = dataclasses.field(default_factory=dict)
    children: list[Component] = dataclasses.field(default_factory=list)

    def one(self, name: str) -> str:
        values = self.properties.get(name, [])
        assert len(values) == 1, f"{self.name}: {name} appears {len(values)} times"
        return values[0][1]

    def params(self, name: str) -> dict[str, str]:
        return self.properties[name][0][0]


def _split(line: str) -> tuple[str, dict[str, str], str]:
    # name *(";" param) ":" value; a quoted parameter value may hold ":" or ";"
    head, params, i, quoted = "", {}, 0, False
    parts: list[str] = []
    current = ""
    while i < len(line):
        char = line[i]
        if char == '"':
            quoted = not quoted
        elif not quoted and char in ";:":
            parts.append(current)
            current = ""
            if char == ":":
                break
            i += 1
            continue
        current += char
        i += 1
    else:
        raise AssertionError(f"content line without a value: {line!r}")
    value = line[i + 1:]
    head = parts[0]
    for part in parts[1:]:
        key, sep, raw = part.partition("=")
        assert sep, f"bad parameter {part!r}"
        params[key.upper()] = raw.strip('"')
    assert head and all(c.isalnum() or c == "-" for c in head), f"bad property name {head!r}"
    return head.upper(), params, value


def unescape(value: str) -> str:
    out, i = "", 0
    while i < len(value):
        if value[i] == "\\":
            nxt = value[i + 1]
            out += "\n" if nxt in "nN" else nxt
            i += 2
        else:
            out += value[i]
            i += 1
    return out


def parse(data: bytes) -> Component:
    """The VCALENDAR in `data`; AssertionError on a bare LF, a line over 75 octets or bad nesting."""
    assert data.endswith(b"\r\n"), "the last line must end with CRLF"
    raw_lines = data[:-2].split(b"\r\n")
    for raw in raw_lines:
        assert b"\n" not in raw and b"\r" not in raw, "lines end with CRLF only"
        assert len(raw) <= 75, f"line of {len(raw)} octets, folding must keep 75: {raw!r}"
    text_lines = [raw.decode("utf-8") for raw in raw_lines]  # each folded piece is valid UTF-8 alone
    lines: list[str] = []
    for line in text_lines:
        if line.startswith((" ", "\t")):
            assert lines, "a continuation line first"
            lines[-1] += line[1:]
        else:
            lines.append(line)
    stack: list[Component] = []
    root: Component | None = None
    for line in lines:
        name, params, value = _split(line)
        if name == "BEGIN":
            component = Component(value.upper())
            if stack:
                stack[-1].children.append(component)
            else:
                assert root is None, "one VCALENDAR only"
                root = component
            stack.append(component)
        elif name == "END":
            assert stack and stack[-1].name == value.upper(), f"END:{value} does not close {stack[-1].name if stack else None}"
            stack.pop()
        else:
            assert stack, f"property {name} outside any component"
            stack[-1].properties.setdefault(name, []).append((params, value))
    assert root is not None and not stack, "unclosed component"
    assert root.name == "VCALENDAR"
    return root

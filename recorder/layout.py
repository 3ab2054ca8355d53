"""Where each picture goes in the composed video (pure arithmetic, tested table-driven)."""

from __future__ import annotations

from typing import NamedTuple


class Rect(NamedTuple):
    x: int
    y: int
    w: int
    h: int


def _even(v: float) -> int:
    return max(2, int(v) // 2 * 2)


def tiles(width: int, height: int, screen: bool) -> dict[str, Rect]:
    """Cameras side by side (practitioner left, patient right); a shared screen takes the
    main place and the cameras stack small on the right."""
    if not screen:
        half = _even(width / 2)
        return {"practitioner": Rect(0, 0, half, height), "patient": Rect(half, 0, width - half, height)}
    side = _even(width / 4)
    top = _even(height / 2)
    return {
        "screen": Rect(0, 0, width - side, height),
        "practitioner": Rect(width - side, 0, side, top),
        "patient": Rect(width - side, top, side, height - top),
    }


def fit(src_w: int, src_h: int, box: Rect) -> Rect:
    """The largest even-sized rectangle of the source's shape centred in `box`."""
    scale = min(box.w / src_w, box.h / src_h)
    w, h = min(box.w, _even(src_w * scale)), min(box.h, _even(src_h * scale))
    return Rect(box.x + (box.w - w) // 2 // 2 * 2, box.y + (box.h - h) // 2 // 2 * 2, w, h)

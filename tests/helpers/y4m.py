"""Tiny y4m writer: solid-colour fake cameras for Chromium (--use-file-for-fake-video-capture)."""

from __future__ import annotations

import random
from pathlib import Path

# BT.601 limited-range YUV of the colours used in tests
YUV = {"red": (81, 90, 240), "blue": (41, 240, 110), "green": (145, 54, 34)}


def write_y4m(path: Path, colour: str, width: int = 320, height: int = 240, fps: int = 15, frames: int = 30,
              busy: bool = False) -> Path:
    """`busy`: the top part is faint fresh noise in every frame (like a camera's grain), so
    the encoder needs a real bitrate (a solid picture costs a few kbit/s) and can trade it for
    quality; the centre keeps `colour` for probes."""
    y, u, v = YUV[colour]
    chroma = bytes([u]) * (width * height // 4) + bytes([v]) * (width * height // 4)
    flat = bytes([y]) * (width * height)
    rng = random.Random(colour)
    noisy = width * (height // 2 - 16)
    grain = bytes(max(16, min(235, y - 8 + b % 16)) for b in range(256))
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            luma = rng.randbytes(noisy).translate(grain) + flat[noisy:] if busy else flat
            f.write(b"FRAME\n" + luma + chroma)
    return path

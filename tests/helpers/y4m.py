"""Tiny y4m writer: solid-colour fake cameras for Chromium (--use-file-for-fake-video-capture)."""

from __future__ import annotations

from pathlib import Path

# BT.601 limited-range YUV of the colours used in tests
YUV = {"red": (81, 90, 240), "blue": (41, 240, 110), "green": (145, 54, 34)}


def write_y4m(path: Path, colour: str, width: int = 320, height: int = 240, fps: int = 15, frames: int = 30) -> Path:
    y, u, v = YUV[colour]
    frame = bytes([y]) * (width * height) + bytes([u]) * (width * height // 4) + bytes([v]) * (width * height // 4)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + frame)
    return path

"""Encoded frames as the SFU moves them: bytes, a timestamp, a time base."""

from __future__ import annotations

from fractions import Fraction

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, 48000)


class EncodedFrame:
    """One encoded frame (a whole VP8/H.264 picture or one Opus packet).

    aiortc's VP8 and Opus packetizers only read `bytes(frame)`, `pts` and
    `time_base`, so this light object replaces an `av.Packet` on the hot path.
    """

    __slots__ = ("data", "pts", "time_base", "keyframe")

    def __init__(self, data: bytes, pts: int, time_base: Fraction, keyframe: bool) -> None:
        self.data = data
        self.pts = pts
        self.time_base = time_base
        self.keyframe = keyframe

    def __bytes__(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        return len(self.data)


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own."""
    if not data:
        return False
    if codec == "vp8":
        # RFC 6386 9.1: the P bit of the frame tag is 0 for a key frame
        return (data[0] & 0x01) == 0
    if codec == "h264":
        return _h264_has_idr(data)
    return True  # audio frames stand alone


def _h264_has_idr(data: bytes) -> bool:
    # annex-B: look for an IDR slice (NAL type 5) after a start code
    i = data.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(data):
        if data[i + 3] & 0x1F == 5:
            return True
        i = data.find(b"\x00\x00\x01", i + 3)
    return False

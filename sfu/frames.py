"""Encoded frames: the RTP clocks' time bases, and whether a frame decodes on its own (the recorder)."""

from __future__ import annotations

from fractions import Fraction

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, 48000)


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

"""Codec checks on RTP payload bytes: does this packet start a picture that decodes on its own?

Like mediasoup's `RTC/Codecs/`: the forwarding path asks only this, per video
packet, to open a consumer's keyframe gate.
"""

from __future__ import annotations


def is_keyframe_start(codec: str, payload: bytes) -> bool:
    """Whether an RTP payload is the first packet of a picture that decodes on its own."""
    if not payload:
        return False
    if codec == "vp8":
        return _vp8_keyframe_start(payload)
    if codec == "h264":
        return _h264_keyframe_start(payload)
    return True  # audio packets stand alone


def _vp8_keyframe_start(p: bytes) -> bool:
    # RFC 7741 4.2: payload descriptor, then the VP8 payload header (RFC 6386 9.1)
    b0 = p[0]
    if not b0 & 0x10 or b0 & 0x07:  # S bit set and partition index 0
        return False
    i = 1
    if b0 & 0x80:  # X: extended control bits
        if len(p) < 2:
            return False
        x = p[1]
        i = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if len(p) <= i:
                return False
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            i += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    return len(p) > i and not p[i] & 0x01  # P bit 0: key frame


def _h264_keyframe_start(p: bytes) -> bool:
    # RFC 6184: an IDR slice or an SPS, alone, in a STAP-A, or at an FU-A's start
    nal = p[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: (16-bit size, NAL unit)*
        i = 1
        while i + 2 < len(p):
            size = (p[i] << 8) | p[i + 1]
            if p[i + 2] & 0x1F in (5, 7):
                return True
            i += 2 + size
        return False
    if nal == 28 and len(p) > 1:  # FU-A: start bit and the fragmented NAL's type
        return bool(p[1] & 0x80) and p[1] & 0x1F in (5, 7)
    return False

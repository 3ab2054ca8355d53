"""Opus in RED (RFC 2198): each audio packet also carries the previous one, so an isolated loss costs nothing.

Chromium offers `red/48000/2` (after Opus) and sends it when the answer puts it
first.  The SFU never encodes nor decodes audio: it negotiates RED with each
browser that offers it and forwards the packets, each leg with its own payload
types; a leg without RED gets the primary Opus block alone, and the recorder
(a packet subscriber) writes the primary block (recorder/depacketize.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from .packet import Packet

RED_MIME = "audio/red"


def answer_first(negotiated: list[RTCRtpCodecParameters], offered: list[RTCRtpCodecParameters]) -> bool:
    """Put RED carrying Opus first in an audio section's `negotiated` codecs if the browser `offered` it.

    aiortc only answers codecs it knows, and it knows no RED; adding RED to
    its codec table would make every aiortc peer in the process offer it too.
    """
    opus = next((c for c in negotiated if c.mimeType.lower() == "audio/opus"), None)
    red = next((c for c in offered if c.mimeType.lower() == RED_MIME and c.clockRate == 48000), None)
    if opus is None or red is None or any(c.mimeType.lower() == RED_MIME for c in negotiated):
        return False
    # the primary and one redundant block, both Opus
    negotiated.insert(0, RTCRtpCodecParameters(mimeType=red.mimeType, clockRate=48000, channels=red.channels,
                                               payloadType=red.payloadType,
                                               parameters={f"{opus.payloadType}/{opus.payloadType}": None}))
    return True


def primary(payload: bytes) -> tuple[int, bytes] | None:
    """The primary block of a RED payload: (its payload type, its data); None if malformed."""
    i = 0
    skip = 0
    while True:
        if i >= len(payload):
            return None
        if not payload[i] & 0x80:  # the last header: one byte, the primary's payload type
            pt = payload[i] & 0x7F
            start = i + 1 + skip
            return (pt, payload[start:]) if start <= len(payload) else None
        if i + 4 > len(payload):
            return None
        skip += ((payload[i + 2] & 0x03) << 8) | payload[i + 3]  # block length, 10 bits
        i += 4


def with_block_type(payload: bytes, payload_type: int) -> bytes | None:
    """The RED payload with every block's payload type set to `payload_type` (None if malformed)."""
    out = bytearray(payload)
    i = 0
    while i < len(out):
        out[i] = (out[i] & 0x80) | payload_type
        if not out[i] & 0x80:
            return bytes(out)
        i += 4
    return None


def adapt(codec: str, packet: Packet, leg: Mapping[str, int]) -> tuple[Packet, int | None] | None:
    """How to send an audio packet of `codec` on a leg with these payload types (name → PT).

    Returns the packet to send and its payload type (None: the leg's first
    codec), or None to drop it (a malformed RED payload).
    """
    if codec != "red":
        return packet, leg.get(codec)
    opus = leg.get("opus")
    if "red" in leg and opus is not None:
        data = with_block_type(packet.payload, opus)
        return (_with_payload(packet, data), leg["red"]) if data is not None else None
    block = primary(packet.payload)
    if block is None:
        return None
    return _with_payload(packet, block[1]), opus


def _with_payload(packet: Packet, payload: bytes) -> Packet:
    if payload == packet.payload:
        return packet
    return Packet(packet.ssrc, packet.payload_type, packet.sequence_number, packet.timestamp, packet.marker,
                  payload, packet.padding_size, packet.audio_level)

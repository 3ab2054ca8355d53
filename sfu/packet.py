"""An RTP packet as the forwarding path carries it: header fields and the payload's bytes."""

from __future__ import annotations


class Packet:
    """One media packet after SRTP, RTX unwrapped; built once, shared by every consumer.

    Not aiortc's `RtpPacket`: no extension parsing, no serializer; each
    consumer writes its own header in front of `payload` (sfu/egress.py).
    """

    __slots__ = ("ssrc", "payload_type", "sequence_number", "timestamp", "marker", "payload",
                 "padding_size", "audio_level")

    def __init__(self, ssrc: int, payload_type: int, sequence_number: int, timestamp: int, marker: int,
                 payload: bytes, padding_size: int = 0, audio_level: tuple[bool, int] | None = None) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.marker = marker
        self.payload = payload
        self.padding_size = padding_size
        self.audio_level = audio_level  # (voice activity, level in -dBov), if the publisher sent it

    def __repr__(self) -> str:
        return f"Packet(ssrc={self.ssrc}, pt={self.payload_type}, seq={self.sequence_number}, ts={self.timestamp})"

"""Options the SFU takes from the operator's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SfuOptions:
    # codecs answered to browsers, by preference; both legs use the same
    audio_codecs: list[str] = field(default_factory=lambda: ["opus"])
    video_codecs: list[str] = field(default_factory=lambda: ["VP8"])
    # seconds a peer connection may take to connect before it is dropped
    connect_timeout: float = 20.0
    # minimum seconds between two keyframe requests sent to one publisher
    keyframe_request_interval: float = 0.5
    # Opus in-band forward error correction and discontinuous transmission, asked of browsers
    opus_fec: bool = True
    opus_dtx: bool = True
    # Opus in RED (RFC 2198, each packet repeats the previous one) with browsers that offer it
    opus_red: bool = True
    # highest bitrate asked of a publisher's video (bit/s, sent as REMB); 0: no cap
    max_video_bitrate: int = 1_500_000
    # "transport-cc": transport-wide feedback both ways with browsers that offer it (the SFU tells each
    # publisher when its packets arrived, and estimates each subscriber's downlink from what that browser
    # says, sfu/bwe.py); "remb": the subscribers' REMB is each leg's estimate
    congestion_control: str = "transport-cc"

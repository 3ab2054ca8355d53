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
    # highest bitrate of a publisher's video (bit/s); 0: no cap.  The browser app caps its encoder at it
    # ([media] max_video_kbps); the SFU's REMB caps the publisher's whole send rate (`remb_cap`)
    max_video_bitrate: int = 1_500_000
    # "transport-cc": transport-wide feedback both ways with browsers that offer it (the SFU tells each
    # publisher when its packets arrived, and estimates each subscriber's downlink from what that browser
    # says, sfu/bwe.py); "remb": the subscribers' REMB is each leg's estimate
    congestion_control: str = "transport-cc"
    # the most a subscriber's browser is told to hold a picture while its publisher's uplink needs repairs
    # (s; the playout-delay extension, sfu/playout.py); 0: the extension is not negotiated
    max_playout_floor: float = 0.5
    # SCHED_RR priority of the thread that runs the rooms' event loop (1-99; sfu/priority.py); 0: normal
    realtime_priority: int = 0


# what a publisher's audio may take beside its video: [media] max_audio_kbps' default (32) twice, Opus in RED
AUDIO_ALLOWANCE = 64_000
# RTP, SRTP and IP/UDP headers on a camera's packets: ~60 bytes of ~1100
PACKET_OVERHEAD = 0.1


def remb_cap(max_video_bitrate: int) -> int:
    """The REMB ceiling for a publisher whose video is capped at `max_video_bitrate` (0: none).

    Chromium takes a REMB as the ceiling of everything it sends: its audio, and
    with transport-wide congestion control the packets' headers too.  A REMB of
    the video cap itself held the encoder ~100-260 kbit/s under that cap on a
    clean network (1408 and 1240 kbit/s of 1500, REMB and transport-cc).  The
    video cap itself is the encoder's maxBitrate, which the browser app sets.
    """
    if not max_video_bitrate:
        return 0
    return int((max_video_bitrate + AUDIO_ALLOWANCE) * (1 + PACKET_OVERHEAD))

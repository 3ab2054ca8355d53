"""Lip sync: a publisher whose click and flash coincide at capture, its video sent 200 ms late.

The publisher is an aiortc peer with its own tracks: a microphone that clicks
once a second and a camera that flashes white at the same instants, each frame
stamped with its capture time; the camera's frames leave `DELAY` after capture,
as a real encoder's do.  Its RTCP sender reports are written as a browser
writes them, from the capture clock (aiortc's own would date the last packet
sent, delay included).  The recorder times frames by those reports; the
composite's click and flash must be within 40 ms.  Placed by first arrival, as
the recorder did before, the picture is `DELAY` late.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiortc.rtcrtpsender
import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket
from helpers.media_peers import Peer, connect

from recorder import Recorder
from recorder.compositor import compose_recording
from recorder.manifest import read_manifest, write_manifest
from sfu import Room, SfuOptions

DELAY = 0.2  # the camera's capture-to-send delay (an encoder's)
FPS, RATE = 15, 48000
WIDTH, HEIGHT, OUT_FPS = 320, 120, 50  # the composite at 50 fps: a picture's onset is known to 20 ms
ORIGIN = 0x12345678  # the publisher's RTP clocks' origin (aiortc draws it at random)
NTP_EPOCH = 2208988800
SECONDS = 6.0
TOLERANCE = 0.040


class ClickTrack(MediaStreamTrack):
    """A microphone, silent but for a 20 ms click at every whole second after `t0` (20 ms frames)."""

    kind = "audio"

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0  # wallclock (time.time()) of the first sample's capture
        self.k = 0
        tone = np.sin(2 * np.pi * 1000 * np.arange(960) / RATE) * 20000
        self.click = tone.astype(np.int16).reshape(1, -1)
        self.silence = np.zeros((1, 960), np.int16)

    async def recv(self) -> av.AudioFrame:
        k = self.k
        self.k += 1
        await asyncio.sleep(max(0.0, self.t0 + k * 0.02 - time.time()))
        frame = av.AudioFrame.from_ndarray(self.click if k % 50 == 0 and k else self.silence,
                                           format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, k * 960, Fraction(1, RATE)
        return frame


class FlashTrack(MediaStreamTrack):
    """A camera, black but for a white frame at every whole second after `t0`, each frame
    handed to the encoder `DELAY` after its capture."""

    kind = "video"

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.k = 0
        self.white = np.full((120, 160, 3), 255, np.uint8)
        self.black = np.zeros((120, 160, 3), np.uint8)

    async def recv(self) -> av.VideoFrame:
        k = self.k
        self.k += 1
        await asyncio.sleep(max(0.0, self.t0 + k / FPS + DELAY - time.time()))
        frame = av.VideoFrame.from_ndarray(self.white if k % FPS == 0 and k else self.black, format="rgb24")
        frame.pts, frame.time_base = k * (90000 // FPS), Fraction(1, 90000)
        return frame


def capture_clock_reports(sender: Any, t0: float, clock_rate: int) -> None:
    """Make the publisher's SRs say what a browser's say: now, and the RTP time of a capture now."""
    send = sender._send_rtcp

    async def send_rtcp(packets: list[Any]) -> None:
        for i, packet in enumerate(packets):
            if isinstance(packet, RtcpSrPacket):
                now = time.time()
                info = dataclasses.replace(packet.sender_info, ntp_timestamp=int((now + NTP_EPOCH) * 2**32),
                                           rtp_timestamp=(ORIGIN + round((now - t0) * clock_rate)) & 0xFFFFFFFF)
                assert isinstance(info, RtcpSenderInfo)
                packets[i] = RtcpSrPacket(ssrc=packet.ssrc, sender_info=info, reports=packet.reports)
        await send(packets)

    sender._send_rtcp = send_rtcp


@pytest.fixture
def known_rtp_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiortc's senders start their RTP clocks at ORIGIN (SSRCs stay random)."""
    drawn = aiortc.rtcrtpsender.random32

    def random32() -> int:
        return ORIGIN if sys._getframe(1).f_code.co_name == "_run_rtp" else drawn()

    monkeypatch.setattr(aiortc.rtcrtpsender, "random32", random32)


def onsets(times: list[float], on: list[bool], quiet: float = 0.5) -> list[float]:
    """When `on` turns true after at least `quiet` seconds off."""
    out: list[float] = []
    last_on = -1e9
    for t, o in zip(times, on):
        if o:
            if t - last_on > quiet:
                out.append(t)
            last_on = t
    return out


def av_offsets(output: str) -> list[float]:
    """Flash onset minus the nearest click onset, in seconds, for each flash of the composite."""
    with av.open(output) as c:
        pictures = [(float(f.time), f.to_ndarray(format="gray")) for f in c.decode(video=0)]
    with av.open(output) as c:
        chunks = [(float(f.time), f.to_ndarray().reshape(-1)) for f in c.decode(audio=0)]
    flashes = onsets([t for t, _ in pictures], [float(g[:, : g.shape[1] // 2].mean()) > 128 for _, g in pictures])
    samples_t: list[float] = []
    loud: list[bool] = []
    for t, data in chunks:
        for j in range(0, len(data), 48):  # 1 ms steps
            samples_t.append(t + j / RATE)
            loud.append(float(np.abs(data[j:j + 48]).max()) > 0.1)
    clicks = onsets(samples_t, loud)
    assert len(flashes) >= 3 and len(clicks) >= 3, (flashes, clicks)
    return [f - min(clicks, key=lambda c: abs(c - f)) for f in flashes]


def lip_sync_publisher(t0: float) -> Peer:
    """A publisher whose audio clicks and video flashes coincide from `t0` on, its sender reports read
    from that capture clock."""
    peer = Peer("red")
    peer.pc.getTransceivers()[0].sender.replaceTrack(ClickTrack(t0))
    peer.pc.getTransceivers()[1].sender.replaceTrack(FlashTrack(t0))
    capture_clock_reports(peer.pc.getTransceivers()[0].sender, t0, RATE)
    capture_clock_reports(peer.pc.getTransceivers()[1].sender, t0, 90000)
    return peer


async def test_click_and_flash_line_up_in_the_composite_by_sender_reports(tmp_path: Path,
                                                                          known_rtp_origin: None) -> None:
    t0 = time.time() + 0.3
    peer = lip_sync_publisher(t0)
    room = Room("lip", SfuOptions())
    folder = tmp_path / "rec"
    try:
        participant = await connect(room, "a", "practitioner", peer)
        camera, mic = participant.producers["camera"], participant.producers["mic"]
        for _ in range(300):  # until both are negotiated and flowing
            if camera.packets and mic.packets:
                break
            await asyncio.sleep(0.05)
        recorder = Recorder("r", "lip", folder)
        recorder.start()
        recorder.attach(room)
        await asyncio.sleep(SECONDS)
        recorder.stop()
        manifest = await recorder.wait_closed()
        assert camera.sender_report is not None and recorder.dropped == 0
    finally:
        room.close()
        await room.wait_closed()
        await peer.close()
    assert sorted((t.source, t.clock) for t in manifest.tracks) == [("camera", "sender"), ("mic", "sender")]

    result = await asyncio.to_thread(compose_recording, str(folder), WIDTH, HEIGHT, OUT_FPS)
    synced = av_offsets(result["output"])

    # the same files placed as before: by the arrival of each track's first frame
    (folder / "by-arrival").mkdir()
    for track in manifest.tracks:
        (folder / "by-arrival" / track.file).hardlink_to(folder / track.file)
        assert track.arrived is not None
        track.start, track.clock = track.arrived, "arrival"
    manifest.state = "stopped"
    write_manifest(folder / "by-arrival", manifest)
    old = await asyncio.to_thread(compose_recording, str(folder / "by-arrival"), WIDTH, HEIGHT, OUT_FPS)
    by_arrival = av_offsets(old["output"])

    print(f"\nlip sync, flash minus click (ms): sender reports {[round(x * 1000) for x in synced]}, "
          f"median {statistics.median(synced) * 1000:.0f}; by arrival {[round(x * 1000) for x in by_arrival]}, "
          f"median {statistics.median(by_arrival) * 1000:.0f} (camera sent {DELAY * 1000:.0f} ms late)")
    assert all(abs(x) <= TOLERANCE for x in synced), synced
    # by arrival, the picture is the encoder's delay late: the check above fails
    assert all(abs(x) > TOLERANCE for x in by_arrival) and statistics.median(by_arrival) > DELAY - TOLERANCE
    assert read_manifest(folder).tracks[0].clock == "sender"

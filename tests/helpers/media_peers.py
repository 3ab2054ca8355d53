"""aiortc peers used as stand-ins for browsers in integration tests (real WebRTC on loopback)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from av import VideoFrame

COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}


class ColourTrack(VideoStreamTrack):
    """A solid-colour 160x120 camera at 15 fps."""

    def __init__(self, colour: str) -> None:
        super().__init__()
        rgb = np.zeros((120, 160, 3), dtype=np.uint8)
        rgb[:, :] = COLOURS[colour]
        self._frame = rgb

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self._frame, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def dominant_colour(frame: VideoFrame) -> str:
    rgb = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    return min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], rgb)))


class Peer:
    """One client: sends a colour camera and a tone, records what it receives."""

    def __init__(self, colour: str) -> None:
        # max-bundle: aiortc's "balanced" leaves a second video section on a dead transport
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        self.pc.addTransceiver(ColourTrack(colour), direction="sendrecv")
        self.pc.addTransceiver("video", direction="recvonly")  # the screen-share slot
        self.video_frames: list[VideoFrame] = []  # the camera section's
        self.screen_frames: list[VideoFrame] = []
        self.video_pts: list[int] = []  # every decoded camera frame's timestamp (90 kHz)
        self.audio_frames = 0
        self.first_video_at: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def share_screen(self, colour: str) -> None:
        """Send a second picture in the screen section (before the offer)."""
        screen = self.pc.getTransceivers()[2]
        screen.direction = "sendrecv"
        screen.sender.replaceTrack(ColourTrack(colour))

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._tasks.append(asyncio.ensure_future(self._drain(track, mid)))

    async def _drain(self, track: MediaStreamTrack, mid: str | None) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    frames = self.screen_frames if mid == "2" else self.video_frames
                    if self.first_video_at is None and mid != "2":
                        self.first_video_at = time.monotonic()
                    frames.append(frame)
                    del frames[:-5]
                    if mid != "2" and frame.pts is not None:
                        self.video_pts.append(frame.pts)
                else:
                    self.audio_frames += 1
        except MediaStreamError:
            pass

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def wait_video(self, count: int = 3, timeout: float = 15.0) -> VideoFrame:
        deadline = time.monotonic() + timeout
        while len(self.video_frames) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(self.video_frames) >= count, f"only {len(self.video_frames)} video frames received"
        return self.video_frames[-1]

    async def close(self) -> None:
        await self.pc.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def connect(room: Any, pid: str, role: str, peer: Peer) -> Any:
    """Join `peer` to an SFU room directly (no signaling); returns the Participant."""
    participant = room.add_participant(pid, role)
    await peer.accept(await participant.handle_offer(await peer.offer()))
    return participant

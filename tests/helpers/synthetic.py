"""Synthetic encoded media for recorder tests and benchmarks: solid-colour VP8, Opus tones."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from recorder.manifest import Event, Manifest, read_manifest
from recorder.writer import DiskWriter, TrackKey
from sealing import Keyring

VIDEO_TB, AUDIO_TB = Fraction(1, 90000), Fraction(1, 48000)
RGB = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20)}


def vp8_frames(colour: str, n: int, w: int = 160, h: int = 120, fps: int = 15) -> list[tuple[bytes, bool]]:
    """Encoded VP8 frames of a solid colour (keyframe first), as a browser would send them."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.options = {"deadline": "realtime", "lag-in-frames": "0"}
    picture = np.zeros((h, w, 3), np.uint8)
    picture[:, :] = RGB[colour]
    out = []
    for i in range(n + 1):
        frame = None
        if i < n:
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
        out += [(bytes(p), p.is_keyframe) for p in ctx.encode(frame)]
    return out


def opus_tone(hz: float, n: int) -> list[bytes]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "stereo", "s16"
    t = np.arange(960) / 48000.0
    out: list[bytes] = []
    for k in range(n):
        s = (np.sin(2 * np.pi * hz * (t + k * 0.02)) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(s, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, k * 960
        out += [bytes(p) for p in ctx.encode(frame)]
    return out


def write_recording(folder: Path, tracks: dict[TrackKey, tuple[float, list[tuple[bytes, bool]]]],
                    events: list[Event], duration: float, keyring: Keyring | None = None) -> Manifest:
    """Feed the disk thread as the media path would: each track from `start` seconds, in real clock ticks."""
    manifest = Manifest(id="r", consultation_id="c", started_at="2026-11-25T20:00:00.000+00:00")
    writer = DiskWriter(folder, manifest, keyring=keyring)
    writer.start()
    for e in events:
        writer.event(e)
    feed = []
    for key, (start, frames) in tracks.items():
        step, tb = (6000, VIDEO_TB) if key.kind == "video" else (960, AUDIO_TB)
        base = 123456789  # RTP clocks start anywhere
        for i, (data, keyframe) in enumerate(frames):
            feed.append((start + i * step * tb, key, data, base + i * step, tb, keyframe))
    for arrival, key, data, rtp, tb, keyframe in sorted(feed, key=lambda f: f[0]):
        while writer._queue.qsize() > 1000:  # faster than real time: let the disk thread keep up
            time.sleep(0.01)
        assert writer.frame(key, data, rtp, tb, keyframe, float(arrival))
    writer.stop(duration)
    assert writer.join(30)
    return read_manifest(folder)


def sealed_recording(folder: Path, seconds: float, keyring: Keyring) -> Manifest:
    """A recording of `seconds` (red camera at 15 fps, a 440 Hz voice) written sealed, as the
    recorder does with a key file; the caller sets its state and consultation."""
    folder.mkdir(parents=True)
    tracks = {
        TrackKey("a", "practitioner", "camera", "video"): (0.0, vp8_frames("red", round(15 * seconds))),
        TrackKey("b", "patient", "mic", "audio"): (0.0, [(p, True) for p in opus_tone(440, round(50 * seconds))]),
    }
    return write_recording(folder, tracks, [], seconds, keyring=keyring)

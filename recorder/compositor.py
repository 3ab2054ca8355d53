"""Compose a recording's raw tracks into one MP4 (H.264 + AAC): run in a worker process.

Cameras side by side (practitioner left, patient right), a shared screen in the
main place with the cameras small, both voices mixed.  Each track is placed on the
recording's timeline by its start plus its own RTP time; the start is the
capture time of its first frame by the sender's clock (RTCP sender reports), so
one side's voice and picture line up as captured (lip sync), or its arrival
when the sender reported nothing.  A camera turned off, or silent for `STALE`
seconds, shows a placeholder.
Memory stays small: tracks are decoded as the output advances.  With a key file,
sealed tracks are read through `sealing` and the MP4 is sealed once written (the
plain MP4 exists only while it is being composed: the MP4 muxer must seek).
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import logging
import math
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from sealing import Keyring, SealError, open_file, seal_file

from .errors import ComposeError, ManifestError
from .layout import Rect, fit, tiles
from .manifest import Event, Manifest, Track, read_manifest, write_manifest

logger = logging.getLogger(__name__)

OUTPUT = "recording.mp4"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
RATE = 48000
AAC_FRAME = 1024
# seconds without a new picture after which a camera counts as off (no frozen picture)
STALE = 1.0
# audio that drifts further than this from its RTP position (samples) is re-placed
AUDIO_SLACK = 3 * 960
# x264's speed/size trade-off (benchmarks/recorder_cpu.py measures it)
X264 = {"preset": "veryfast", "crf": "23"}
BLACK = (16, 128, 128)
PLACEHOLDER = (40, 128, 128)
FIGURE = (96, 128, 128)

Plane = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Summary:
    duration: float
    frames: int
    width: int
    height: int


class VideoLane:
    """One side's camera (or screen): its tracks merged on the timeline; `at(t)` gives the
    picture on screen at `t` and when it arrived."""

    def __init__(self, directory: Path, tracks: list[Track], keyring: Keyring | None = None) -> None:
        self._frames = heapq.merge(*(_video_frames(directory, t, keyring) for t in tracks), key=lambda x: x[0])
        self._next: tuple[float, Any] | None = next(self._frames, None)
        self.current: tuple[float, Any] | None = None

    def at(self, t: float) -> tuple[float, Any] | None:
        while self._next is not None and self._next[0] <= t:
            self.current = self._next
            self._next = next(self._frames, None)
        return self.current


class AudioLane:
    """One side's microphone tracks as mono float samples at 48 kHz on the timeline."""

    def __init__(self, directory: Path, tracks: list[Track], keyring: Keyring | None = None) -> None:
        self._chunks = heapq.merge(*(_audio_chunks(directory, t, keyring) for t in tracks), key=lambda x: x[0])
        self._pending: list[tuple[int, npt.NDArray[np.float32]]] = []
        self._done = False

    def take(self, start: int, n: int) -> npt.NDArray[np.float32]:
        """Samples [start, start + n) of this lane (silence where nothing was said)."""
        end = start + n
        while not self._done and (not self._pending or self._pending[-1][0] < end):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
            else:
                self._pending.append(chunk)
        out = np.zeros(n, dtype=np.float32)
        keep = []
        for s, data in self._pending:
            e = s + len(data)
            if e > end:
                keep.append((s, data))
            lo, hi = max(s, start), min(e, end)
            if lo < hi:
                out[lo - start:hi - start] += data[lo - s:hi - s]
        self._pending = keep
        return out


@contextlib.contextmanager
def _open_track(directory: Path, track: Track, keyring: Keyring | None) -> Iterator[Any]:
    """A track's container, read through its seal when there is a key ring (a cut file is fine)."""
    if keyring is None:
        with av.open(str(directory / track.file)) as container:
            yield container
        return
    with open_file(directory / track.file, keyring, tolerate_cut=True) as f, av.open(f) as container:
        yield container


def _video_frames(directory: Path, track: Track, keyring: Keyring | None = None) -> Iterator[tuple[float, Any]]:
    try:
        with _open_track(directory, track, keyring) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if frame.time is not None:
                    yield track.start + frame.time, frame
    except (av.FFmpegError, OSError, SealError) as exc:
        # a file cut short by a crash ends early: keep what decoded
        logger.info("track %s ends early: %s", track.file, exc)


def _audio_chunks(directory: Path, track: Track,
                  keyring: Keyring | None = None) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    expected: int | None = None
    try:
        with _open_track(directory, track, keyring) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                at = round((track.start + frame.time) * RATE)
                for out in resampler.resample(frame):
                    data = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    # continuous unless the RTP time says we drifted (a gap, a lost burst)
                    if expected is None or abs(at - expected) > AUDIO_SLACK:
                        expected = at
                    yield expected, data
                    expected += len(data)
                    at += len(data)
    except (av.FFmpegError, OSError, SealError) as exc:
        logger.info("track %s ends early: %s", track.file, exc)


def _track_end(directory: Path, track: Track, keyring: Keyring | None = None) -> float:
    """When a track's last frame is on the timeline (demux only, no decoding)."""
    end = track.start
    try:
        with _open_track(directory, track, keyring) as container:
            stream = container.streams[0]
            time_base = stream.time_base or Fraction(1, 1000)
            for packet in container.demux(stream):
                if packet.pts is not None:
                    end = max(end, track.start + float(packet.pts * time_base))
    except (av.FFmpegError, OSError, SealError):
        pass
    return end


def _planes(frame: Any) -> tuple[Plane, Plane, Plane]:
    out = []
    for i, plane in enumerate(frame.planes):
        w, h = (frame.width, frame.height) if i == 0 else (frame.width // 2, frame.height // 2)
        out.append(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w])
    return out[0], out[1], out[2]


class Canvas:
    """The output picture as three YUV 4:2:0 planes."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.y = np.empty((height, width), np.uint8)
        self.u = np.empty((height // 2, width // 2), np.uint8)
        self.v = np.empty((height // 2, width // 2), np.uint8)
        self._figures: dict[tuple[int, int], npt.NDArray[np.bool_]] = {}

    def fill(self, rect: Rect, colour: tuple[int, int, int]) -> None:
        x, y, w, h = rect
        self.y[y:y + h, x:x + w] = colour[0]
        self.u[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = colour[1]
        self.v[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = colour[2]

    def placeholder(self, rect: Rect) -> None:
        """A neutral card with a head-and-shoulders figure: never the last frame, frozen."""
        self.fill(rect, PLACEHOLDER)
        mask = self._figures.get((rect.w, rect.h))
        if mask is None:
            yy, xx = np.mgrid[0:rect.h, 0:rect.w]
            cx, r = rect.w / 2, min(rect.w, rect.h) / 8
            head = (xx - cx) ** 2 + (yy - rect.h * 0.4) ** 2 <= r ** 2
            body = ((xx - cx) ** 2 / (2.2 * r) ** 2 + (yy - rect.h * 0.4 - 3.2 * r) ** 2 / (1.8 * r) ** 2 <= 1) \
                & (yy <= rect.h * 0.4 + 3.2 * r)
            mask = self._figures[(rect.w, rect.h)] = head | body
        self.y[rect.y:rect.y + rect.h, rect.x:rect.x + rect.w][mask] = FIGURE[0]

    def draw(self, frame: Any, box: Rect) -> None:
        self.fill(box, BLACK)
        place = fit(frame.width, frame.height, box)
        y, u, v = _planes(frame.reformat(width=place.w, height=place.h, format="yuv420p"))
        self.y[place.y:place.y + place.h, place.x:place.x + place.w] = y
        self.u[place.y // 2:(place.y + place.h) // 2, place.x // 2:(place.x + place.w) // 2] = u
        self.v[place.y // 2:(place.y + place.h) // 2, place.x // 2:(place.x + place.w) // 2] = v

    def frame(self) -> Any:
        data = np.concatenate((self.y.reshape(-1), self.u.reshape(-1), self.v.reshape(-1)))
        return av.VideoFrame.from_ndarray(data.reshape(self.height * 3 // 2, self.width), format="yuv420p")


def _flag(events: list[Event], role: str, name: str, t: float, default: bool) -> bool:
    """What `role` said about its `name` track at time `t` (events are in time order)."""
    value = default
    for event in events:
        if event.t > t:
            break
        if event.role == role:
            value = bool(getattr(event, name))
    return value


def compose(directory: Path, output: Path, manifest: Manifest, width: int, height: int, fps: int,
            keyring: Keyring | None = None) -> Summary:
    """Write the MP4 of `manifest`'s tracks to `output` (blocking, CPU-bound); sealed with a key ring."""
    if width % 2 or height % 2:
        raise ComposeError("the output width and height must be even")
    duration = manifest.duration
    if duration is None:  # the server died while recording: the tracks say how long
        duration = max((_track_end(directory, t, keyring) for t in manifest.tracks), default=0.0)
    duration = max(duration, 1.0 / fps)
    events = sorted(manifest.events, key=lambda e: e.t)

    def by(role: str, source: str) -> list[Track]:
        return [t for t in manifest.tracks if t.role == role and t.source == source]

    roles = ("practitioner", "patient")
    cameras = {role: VideoLane(directory, by(role, "camera"), keyring) for role in roles}
    screens = {role: VideoLane(directory, by(role, "screen"), keyring) for role in roles}
    voices = [AudioLane(directory, by(role, "mic"), keyring) for role in roles]
    canvas = Canvas(width, height)
    n_frames = max(1, math.ceil(duration * fps))
    n_samples = round(duration * RATE)
    tmp = output.with_name(output.name + ".part")
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=fps, options=dict(X264))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.thread_count = 1  # one core: the calls on this machine keep the others
        audio = out.add_stream("aac", rate=RATE, layout="mono")
        audio.bit_rate = 64000
        sample = 0
        for i in range(n_frames):
            t = i / fps
            shown = None
            for role in roles:
                got = screens[role].at(t)
                if got is not None and t - got[0] <= STALE and _flag(events, role, "screen", t, True):
                    shown = got[1]
            layout = tiles(width, height, screen=shown is not None)
            canvas.fill(Rect(0, 0, width, height), BLACK)
            if shown is not None:
                canvas.draw(shown, layout["screen"])
            for role in roles:
                got = cameras[role].at(t)
                if got is None or t - got[0] > STALE or not _flag(events, role, "camera", t, True):
                    canvas.placeholder(layout[role])
                else:
                    canvas.draw(got[1], layout[role])
            frame = canvas.frame()
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
            # the sound up to the end of this picture
            until = min(n_samples, round((i + 1) * RATE / fps))
            while sample < until:
                n = min(AAC_FRAME, n_samples - sample)
                mixed = np.clip(sum((lane.take(sample, n) for lane in voices), np.zeros(n, np.float32)), -1.0, 1.0)
                chunk = av.AudioFrame.from_ndarray(mixed.reshape(1, -1).astype(np.float32), format="fltp", layout="mono")
                chunk.sample_rate = RATE
                chunk.pts = sample
                chunk.time_base = Fraction(1, RATE)
                out.mux(audio.encode(chunk))
                sample += n
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    if keyring is None:
        os.replace(tmp, output)
    else:
        try:
            seal_file(tmp, output, keyring)
        finally:
            tmp.unlink(missing_ok=True)
    return Summary(duration=round(duration, 3), frames=n_frames, width=width, height=height)


def worker_init() -> None:
    """In the composing process: yield the CPU to the media path, and die with the server."""
    os.nice(10)
    # a server killed while composing must not leave its worker behind for ever; the
    # recording is composed again at the next start (its manifest still says stopped)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the pool's own checks are all there is
    if os.getppid() == 1:
        os._exit(0)  # the server died before we got here


def compose_recording(directory: str, width: int, height: int, fps: int,
                      key_file: str | None = None) -> dict[str, Any]:
    """Worker-process entry point: compose, then mark the manifest composed (or failed).

    `key_file`: the key ring's file, when tracks are sealed (the MP4 then is too).
    """
    folder = Path(directory)
    try:
        manifest = read_manifest(folder)
        keyring = None if key_file is None else Keyring(Path(key_file))
    except (ManifestError, SealError) as exc:
        raise ComposeError(str(exc)) from None
    try:
        summary = compose(folder, folder / OUTPUT, manifest, width, height, fps, keyring)
    except (av.FFmpegError, OSError, ValueError, SealError) as exc:
        manifest.state = "failed"
        write_manifest(folder, manifest)
        raise ComposeError(f"recording {manifest.id} could not be composed: {exc}") from None
    manifest.state = "composed"
    manifest.output = OUTPUT
    if manifest.duration is None:
        manifest.duration = summary.duration
    write_manifest(folder, manifest)
    return {"id": manifest.id, "output": str(folder / OUTPUT), "duration": summary.duration,
            "frames": summary.frames}

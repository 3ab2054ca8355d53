"""The recorder's disk thread: encoded frames into one Matroska file per track, no decoding.

VP8 and Opus go into WebM (.webm), H.264 into Matroska (.mkv, Annex-B access
units); the manifest names each track's codec.  A track's frames are placed by
their RTP timestamps; its start on the recording's timeline is the arrival of
its first frame until the recorder gives a capture time (from the publisher's
RTCP sender reports), which then replaces it: audio and video of one sender
line up by when they were captured, not when they arrived (lip sync).

The event loop only puts frames on a bounded queue; this thread muxes them with
PyAV.  Every packet is flushed to the file as it is written (live Matroska,
`flush_packets`), so a file cut short by a crash still plays up to its last frame.
With a key ring, each file is sealed as it is written (sealing/): a crash then
loses at most the last 64 KiB chunk of each track.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from sealing import Keyring, SealedWriter

from .manifest import Event, Manifest, Track, write_manifest

logger = logging.getLogger(__name__)

# the codec of each kind the writer knows (the first: the default)
CODECS = {"audio": ("opus",), "video": ("vp8", "h264")}
FORMATS = {"opus": ("webm", "webm"), "vp8": ("webm", "webm"), "h264": ("matroska", "mkv")}
# a jump of the RTP clock larger than this (seconds) is re-anchored on the arrival time
MAX_JUMP = 10.0
# seconds the disk thread lets frames gather between two rounds (one wake-up per
# round, not per frame); what a crash can lose is at most this much more
BATCH = 0.05
_WRAP = 1 << 32


@dataclass(frozen=True, slots=True)
class TrackKey:
    """Who sends a track: one producer of one side."""

    producer_id: str
    role: str
    source: str
    kind: str
    codec: str = ""  # "" : the kind's default (CODECS)

    @property
    def media(self) -> str:
        return self.codec or CODECS[self.kind][0]


class _TrackFile:
    """One open Matroska file and the RTP clock of its producer."""

    def __init__(self, path: Path, key: TrackKey, data: bytes, time_base: Fraction,
                 keyring: Keyring | None = None) -> None:
        self.key = key
        self.time_base = time_base
        self.sealed: SealedWriter | None = None
        target: Any = str(path)
        if keyring is not None:
            target = self.sealed = SealedWriter(path.open("wb"), keyring)
        try:
            self.container: Any = av.open(target, "w", format=FORMATS[key.media][0],
                                          options={"live": "1", "flush_packets": "1"})
        except BaseException:
            if self.sealed is not None:
                self.sealed.close()
            raise
        if key.kind == "video":
            width, height = vp8_size(data) if key.media == "vp8" else h264_size(data)
            video: Any = self.container.add_stream(key.media)
            video.width, video.height = width, height
            self.stream: Any = video
        else:
            self.stream = self.container.add_stream("opus", rate=48000)
        self.stream.time_base = time_base
        self.first_rtp: int | None = None
        self.last_rtp = 0
        self.unwrapped = 0
        self.last_pts = -1
        self.start = 0.0
        self.frames = 0
        self.track: Track | None = None  # its entry in the manifest
        self.synced = False  # its start comes from a capture time

    def pts(self, rtp: int, arrival: float) -> int:
        """The frame's time from the track's first frame, in clock ticks, always increasing."""
        if self.first_rtp is None:
            self.first_rtp = self.last_rtp = rtp
            self.start = arrival
            return 0
        diff = (rtp - self.last_rtp) % _WRAP
        if diff >= _WRAP // 2:
            diff -= _WRAP  # a little backwards (reordering): keep order below
        self.last_rtp = rtp
        self.unwrapped += diff
        pts = self.unwrapped
        if abs(diff) * self.time_base > MAX_JUMP:
            # the sender's clock jumped: trust the arrival time instead
            pts = round((arrival - self.start) / self.time_base)
            self.unwrapped = pts
        return max(pts, self.last_pts + 1)

    def write(self, data: bytes, rtp: int, keyframe: bool, arrival: float) -> int:
        pts = self.pts(rtp, arrival)
        packet = av.Packet(data)
        packet.stream = self.stream
        packet.pts = packet.dts = pts
        packet.time_base = self.time_base
        packet.is_keyframe = keyframe
        self.container.mux(packet)
        self.last_pts = pts
        self.frames += 1
        return pts

    def close(self) -> None:
        try:
            self.container.close()
        finally:
            if self.sealed is not None:
                self.sealed.close()


def vp8_size(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 key frame's header (RFC 6386 9.1)."""
    if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
        raise ValueError("not a VP8 key frame")
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


def h264_size(data: bytes) -> tuple[int, int]:
    """Width and height of an H.264 access unit with an IDR picture (decoded once, at a file's start)."""
    decoder: Any = av.CodecContext.create("h264", "r")
    for frame in [*decoder.decode(av.Packet(data)), *decoder.decode(None)]:
        return int(frame.width), int(frame.height)
    raise ValueError("not an H.264 key frame")


class DiskWriter:
    """One thread per recording; `frame()` never blocks (a full queue drops the frame)."""

    def __init__(self, directory: Path, manifest: Manifest, max_queue_frames: int = 3000,
                 keyring: Keyring | None = None) -> None:
        self.directory = directory
        self.keyring = keyring
        self.manifest = manifest
        self.dropped = 0
        self.frames_written = 0
        self.error: str | None = None
        self._max = max_queue_frames
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._files: dict[TrackKey, _TrackFile | None] = {}
        self._gaps: set[TrackKey] = set()  # video tracks that lost a frame (event loop side)
        self._counts: dict[tuple[str, str], int] = {}
        self._thread = threading.Thread(target=self._run, name=f"recorder-{manifest.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def frame(self, key: TrackKey, data: bytes, rtp: int, time_base: Fraction, keyframe: bool, arrival: float,
              capture: float | None = None) -> bool:
        """Queue a frame; False when dropped (the disk is behind).

        `arrival`, `capture`: seconds on the recording's timeline; `capture` (when the
        sender said, by its sender reports) places the track once it is known.
        """
        if key in self._gaps:
            if not keyframe:
                self.dropped += 1
                return False  # a video track that lost a frame waits for the next keyframe
            self._gaps.discard(key)
        if self._queue.qsize() >= self._max:
            self.dropped += 1
            if key.kind == "video":
                self._gaps.add(key)
            return False
        self._queue.put(("frame", key, data, rtp, time_base, keyframe, arrival, capture))
        return True

    def event(self, event: Event) -> None:
        self._queue.put(("event", event))

    def stop(self, duration: float) -> None:
        self._queue.put(("stop", duration))

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread (blocking); True once it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- in the thread

    def _run(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_manifest(self.directory, self.manifest)
        except OSError as exc:
            logger.error("Recording(%s) cannot write its folder: %s", self.manifest.id, exc.strerror)
            self.error = str(exc.strerror)
        while True:
            item = self._queue.get()
            while True:
                if item[0] == "frame":
                    if self.error is None:
                        self._write(*item[1:])
                elif item[0] == "event":
                    self.manifest.events.append(item[1])
                    self._save()
                elif item[0] == "stop":
                    self._finish(item[1])
                    return
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            time.sleep(BATCH)

    def _write(self, key: TrackKey, data: bytes, rtp: int, time_base: Fraction, keyframe: bool, arrival: float,
               capture: float | None) -> None:
        track = self._files.get(key)
        if track is None:
            if key in self._files:
                return  # this track failed before
            if key.kind == "video" and not keyframe:
                return  # a video file starts on a keyframe
            track = self._open(key, data, time_base, arrival)
            if track is None:
                return
        try:
            pts = track.write(data, rtp, keyframe, arrival)
            self.frames_written += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            logger.error("Recording(%s) track %s stopped: %s", self.manifest.id, key.source, exc)
            self._close(key)
            self._files[key] = None
            return
        if capture is not None and not track.synced and track.track is not None:
            # the first capture time of this track: its place on the timeline, from now on
            track.synced = True
            track.track.start = round(capture - float(pts * track.time_base), 4)
            track.track.clock = "sender"
            self._save()

    def _open(self, key: TrackKey, data: bytes, time_base: Fraction, arrival: float) -> _TrackFile | None:
        n = self._counts.get((key.role, key.source), 0) + 1
        self._counts[(key.role, key.source)] = n
        name = f"{key.role}-{key.source}-{n:02d}.{FORMATS[key.media][1]}"
        try:
            track = _TrackFile(self.directory / name, key, data, time_base, self.keyring)
        except (av.FFmpegError, OSError, ValueError) as exc:
            logger.error("Recording(%s) cannot open a %s track: %s", self.manifest.id, key.source, exc)
            self._files[key] = None
            return None
        self._files[key] = track
        track.track = Track(file=name, role=key.role, source=key.source, kind=key.kind, codec=key.media,
                            start=round(arrival, 4), arrived=round(arrival, 4))
        self.manifest.tracks.append(track.track)
        self._save()
        return track

    def _close(self, key: TrackKey) -> None:
        track = self._files.get(key)
        if track is not None:
            try:
                track.close()
            except (av.FFmpegError, OSError) as exc:
                logger.error("Recording(%s) track %s did not close cleanly: %s", self.manifest.id, key.source, exc)

    def _finish(self, duration: float) -> None:
        for key in list(self._files):
            self._close(key)
        self.manifest.state = "stopped"
        self.manifest.duration = round(duration, 3)
        self._save()
        logger.info("Recording(%s) stopped: %d frames written, %d dropped", self.manifest.id,
                    self.frames_written, self.dropped)

    def _save(self) -> None:
        try:
            write_manifest(self.directory, self.manifest)
        except OSError as exc:
            logger.error("Recording(%s) cannot write its manifest: %s", self.manifest.id, exc.strerror)

"""Cheap synthetic media for the SFU load generator: pre-encoded VP8/Opus out, no decoding in.

Sending: `encode_media()` encodes, once, a few seconds of a moving 640x480 pattern
with libvpx (~1 Mbit/s, keyframe first) and an Opus tone in 20 ms packets, and keeps
the packet bytes.  `LoopTrack` loops them as `av.Packet` objects with increasing pts,
paced in real time, so aiortc's sender only packetizes (no encoder runs).  Every
video frame gets a 12-byte trailer, ``LTCY`` + big-endian `time.monotonic_ns()` taken
when the frame is handed to the sender: the receiver in the same process reads the
one-way latency on one clock.  VP8 decoders ignore trailing bytes.

Every picture also carries its loop index as a barcode (8 black/white blocks in the top
32 rows), which survives a decode + re-encode: `StreamMeter` can decode a sampled
stream (only for the re-encoding MediaRelay baseline, where the trailer is lost) and
match the index to the send time.

Receiving: `StreamMeter.attach(receiver)` replaces the receiver's decoder queue (and
installs the low-latency jitter buffers our SFU uses), so nothing is decoded: each
re-assembled frame is counted, its trailer read, and gaps between frames tracked.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import pickle
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for sfu.ice.IcePolicy in loadgen/relay_baseline

TRAILER_MAGIC = b"LTCY"
TRAILER_LEN = 12
VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
BARCODE_BITS = 8
BARCODE_ROWS = 32
GAP_S = 0.5


# ---------------------------------------------------------------- pre-encoding

@dataclass
class EncodedMedia:
    video: list[bytes]           # VP8 frames, first one a keyframe
    audio: list[bytes]           # Opus packets, 20 ms each
    fps: int
    width: int
    height: int
    video_kbps: float
    keyframes: list[int] = field(default_factory=list)


def _picture(i: int, w: int, h: int, tex: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> av.VideoFrame:
    y = ((np.sin((xx + i * 6) / 23.0) + np.cos((yy - i * 4) / 17.0)) * 50 + 128).astype(np.uint8)
    ox, oy = (i * 7) % w, (i * 5) % h
    y[h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2] = tex[oy: oy + h // 2, ox: ox + w // 2] // 2 + 64
    bw = w // BARCODE_BITS
    for b in range(BARCODE_BITS):
        y[0:BARCODE_ROWS, b * bw:(b + 1) * bw] = 235 if (i >> b) & 1 else 16
    uv = np.full((h // 2, w // 2), 128, np.uint8)
    planes = np.concatenate([y, uv.reshape(-1, w), uv.reshape(-1, w)]).reshape(h * 3 // 2, w)
    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


def encode_media(seconds: float = 3.0, fps: int = 30, width: int = 640, height: int = 480,
                 kbps: int = 1000, gop: int = 45, cache: Path | None = None) -> EncodedMedia:
    """Encode the loop once (or load it from `cache`)."""
    key = f"{seconds}-{fps}-{width}x{height}-{kbps}-{gop}"
    if cache is not None and cache.exists():
        media = pickle.loads(cache.read_bytes())
        if getattr(media, "_key", None) == key:
            return media  # type: ignore[no-any-return]
    n = int(seconds * fps)
    assert n < (1 << BARCODE_BITS)
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fps
    ctx.bit_rate = kbps * 1000
    ctx.gop_size = gop
    ctx.options = {"deadline": "good", "cpu-used": "4", "lag-in-frames": "0", "auto-alt-ref": "0",
                   "end-usage": "cbr", "buf-sz": "1000", "buf-initial-sz": "500", "buf-optimal-sz": "600"}
    rng = np.random.default_rng(1)
    tex = rng.integers(0, 255, (height * 2, width * 2), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    video: list[bytes] = []
    keys: list[int] = []
    for i in range(n + 1):
        frame = _picture(i, width, height, tex, yy, xx) if i < n else None
        if frame is not None:
            frame.pts = i
        for p in ctx.encode(frame):
            if p.is_keyframe:
                keys.append(len(video))
            video.append(bytes(p))
    assert keys and keys[0] == 0, "the first frame must be a keyframe"
    # Opus: a 440 Hz tone, 20 ms packets
    actx = av.CodecContext.create("libopus", "w")
    actx.sample_rate, actx.layout, actx.format = 48000, "stereo", "s16"
    actx.bit_rate = 48000
    audio: list[bytes] = []
    t = np.arange(960) / 48000.0
    for k in range(int(seconds * 50)):
        s = (np.sin(2 * np.pi * 440 * (t + k * 0.02)) * 8000).astype(np.int16)
        af = av.AudioFrame.from_ndarray(np.repeat(s, 2).reshape(1, -1), format="s16", layout="stereo")
        af.sample_rate, af.pts = 48000, k * 960
        audio.extend(bytes(p) for p in actx.encode(af))
    audio.extend(bytes(p) for p in actx.encode(None))
    media = EncodedMedia(video, audio, fps, width, height,
                         round(sum(map(len, video)) * 8 / (len(video) / fps) / 1000, 1), keys)
    media._key = key  # type: ignore[attr-defined]
    if cache is not None:
        cache.write_bytes(pickle.dumps(media))
    return media


# ---------------------------------------------------------------- sending

class SendLog:
    """Send times of the last loop index sent on one video track (for the barcode path)."""

    def __init__(self, n: int) -> None:
        self.ns = [0] * n


class LoopTrack(MediaStreamTrack):
    """Loops pre-encoded packets in real time as `av.Packet`s (the sender only packetizes)."""

    def __init__(self, kind: str, media: EncodedMedia, stamp: bool = True) -> None:
        super().__init__()
        self.kind = kind
        self._items = media.video if kind == "video" else media.audio
        self._period = 1 / media.fps if kind == "video" else 0.02
        self._step = 90000 // media.fps if kind == "video" else 960
        self._tb = VIDEO_TB if kind == "video" else AUDIO_TB
        self._stamp = stamp and kind == "video"
        self._k = 0  # frames sent: the timeline (pts) never jumps
        self._i = 0  # position in the loop: jumps to a keyframe on request
        self._keyframes = media.keyframes if kind == "video" else []
        self._want_keyframe = False
        self._start: float | None = None
        self.log = SendLog(len(self._items))
        self.sent = 0
        self.keyframe_requests = 0

    def force_keyframe(self) -> None:
        """A PLI/FIR from the other end: send a keyframe next, as a browser would."""
        self.keyframe_requests += 1
        self._want_keyframe = True

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            from aiortc.mediastreams import MediaStreamError
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._k * self._period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        if self._want_keyframe:
            self._want_keyframe = False
            if self._i % len(self._items) not in self._keyframes:
                self._i = next((k for k in self._keyframes if k > self._i % len(self._items)), len(self._items))
        i = self._i % len(self._items)
        self._i = i + 1
        data = self._items[i]
        now = time.monotonic_ns()
        if self._stamp:
            data = data + TRAILER_MAGIC + struct.pack(">Q", now)
        self.log.ns[i] = now
        packet = av.Packet(data)
        packet.pts = self._k * self._step
        packet.time_base = self._tb
        self._k += 1
        self.sent += 1
        return packet


# ---------------------------------------------------------------- receiving
# The generator's own copy of the receive hooks (the SFU's evolve; the generator must not):
# aiortc 1.16 private names `_RTCRtpReceiver__decoder_queue` / `__jitter_buffer`.

class FrameSink:
    """Stands in for the receiver's decoder queue: frames go to a callback, nothing is decoded."""

    def __init__(self, deliver: Any) -> None:
        self._deliver = deliver
        self._stopped = threading.Event()

    def put(self, item: Any) -> None:
        if item is None:
            self._stopped.set()
            return
        codec, frame = item
        self._deliver(codec.name.lower(), frame)

    def get(self) -> None:
        self._stopped.wait()  # the receiver's idle decoder thread waits here until it stops
        return None


class MarkerJitterBuffer(JitterBuffer):
    """Releases a video frame as soon as its marker packet is in (aiortc waits for the next frame)."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is None and self._origin is not None:
            packets: list[RtpPacket] = []
            timestamp = None
            for n in range(self._capacity):
                p = self._packets[(self._origin + n) % self._capacity]
                if p is None or (timestamp is not None and p.timestamp != timestamp):
                    break
                timestamp = p.timestamp
                packets.append(p)
                if p.marker:
                    self.remove(n + 1)
                    frame = JitterFrame(b"".join(x._data for x in packets), p.timestamp)
                    break
        return pli, frame


class AudioPassBuffer(JitterBuffer):
    """Releases each audio packet at once (aiortc prefetches 4 packets, 80 ms)."""

    def __init__(self) -> None:
        super().__init__(capacity=16)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        return False, JitterFrame(packet._data, packet.timestamp)


def attach_sink(receiver: RTCRtpReceiver, kind: str, deliver: Any) -> None:
    """Before the receiver starts: frames to `deliver(codec, JitterFrame)`, low-latency buffers."""
    receiver._RTCRtpReceiver__decoder_queue = FrameSink(deliver)  # type: ignore[attr-defined]
    receiver._RTCRtpReceiver__jitter_buffer = (  # type: ignore[attr-defined]
        MarkerJitterBuffer(capacity=512, is_video=True) if kind == "video" else AudioPassBuffer())


def read_barcode(frame: av.VideoFrame) -> int:
    y = frame.to_ndarray(format="gray")
    bw = frame.width // BARCODE_BITS
    row = y[BARCODE_ROWS // 2]
    return sum(1 << b for b in range(BARCODE_BITS) if row[b * bw + bw // 2] > 128)


def note_gap(meter: Any, now: int) -> None:
    """A frame arrived at `now` (ns): update the meter's gap figures (max_gap_s, gaps, gap_events, last_at)."""
    if meter.last_at is not None:
        gap = (now - meter.last_at) / 1e9
        if gap > meter.max_gap_s:
            meter.max_gap_s = gap
        if gap > GAP_S:
            meter.gaps += 1
            if len(meter.gap_events) < 20:
                meter.gap_events.append((now / 1e9, round(gap * 1000)))
    meter.last_at = now


def read_trailer(meter: Any, now: int, data: bytes) -> bool:
    """Add the one-way latency of a frame ending with the LTCY trailer to `meter.latencies_us`."""
    if len(data) > TRAILER_LEN and data[-TRAILER_LEN:-8] == TRAILER_MAGIC:
        (sent,) = struct.unpack(">Q", data[-8:])
        meter.latencies_us.append((now - sent) // 1000)
        return True
    return False


class StreamMeter:
    """Counts what one receiver gets, without decoding (unless `decode_log` is given)."""

    def __init__(self, kind: str, label: str, decode_log: SendLog | None = None) -> None:
        self.kind = kind
        self.label = label
        self.frames = 0
        self.bytes = 0
        self.latencies_us: list[int] = []
        self.last_at: int | None = None
        self.max_gap_s = 0.0
        self.gaps = 0
        self.gap_events: list[tuple[float, int]] = []  # (monotonic s at the end of the gap, gap ms)
        self.first_at: float | None = None
        self.no_trailer = 0
        self._decode_log = decode_log
        self._decoder: Any = None
        self.decode_errors = 0
        self.receiver: RTCRtpReceiver | None = None

    def attach(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        attach_sink(receiver, self.kind, self._deliver)

    def reset_window(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.latencies_us = []
        self.max_gap_s = 0.0
        self.gaps = 0
        self.gap_events = []

    def _deliver(self, codec: str, frame: Any) -> None:
        now = time.monotonic_ns()
        data: bytes = frame.data
        self.frames += 1
        self.bytes += len(data)
        if self.first_at is None:
            self.first_at = time.monotonic()
        note_gap(self, now)
        if self.kind != "video":
            return
        if read_trailer(self, now, data):
            pass
        elif self._decode_log is not None:
            self._decode_latency(now, data)
        else:
            self.no_trailer += 1

    def _decode_latency(self, now: int, data: bytes) -> None:
        # the re-encoding relay loses the trailer: decode and read the loop-index barcode
        if self._decoder is None:
            self._decoder = av.CodecContext.create("libvpx", "r")
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.error.FFmpegError:
            self.decode_errors += 1
            return
        assert self._decode_log is not None
        for f in frames:
            sent = self._decode_log.ns[read_barcode(f) % len(self._decode_log.ns)]
            if 0 < sent <= now and now - sent < 2_000_000_000:
                self.latencies_us.append((now - sent) // 1000)


def percentile(values: list[int] | list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


# ---------------------------------------------------------------- /proc readings

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of a process's threads, summed by thread name (/proc/PID/task/*/stat)."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue  # the thread ended meanwhile
        name = head.split("(", 1)[1].rstrip("0123456789 -#")  # "hloop 12" -> "hloop"
        fields = rest.split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def threads_pct(a: dict[str, float], b: dict[str, float], seconds: float) -> dict[str, float]:
    """% of a core per thread name between two `thread_cpu_s` readings (threads that ended are missing)."""
    pct = {name: round(100 * (b[name] - a.get(name, 0.0)) / seconds, 2) for name in b}
    return dict(sorted(((k, v) for k, v in pct.items() if v > 0), key=lambda kv: -kv[1]))


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cores_jiffies() -> dict[str, tuple[int, int, int]]:
    """Per-core (busy, steal, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                v = [int(x) for x in vals[:8]]
                idle = v[3] + v[4]
                out[name] = (sum(v) - idle, v[7], sum(v))
    return out


def cores_busy(a: dict[str, tuple[int, int, int]], b: dict[str, tuple[int, int, int]]) -> dict[str, float]:
    """% busy (incl. steal) of each core between two `cores_jiffies()` readings."""
    return {name: round(100.0 * (b[name][0] - a[name][0]) / max(1, b[name][2] - a[name][2]), 1)
            for name in b if name in a}


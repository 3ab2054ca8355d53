"""Small real media files made at run time (nothing generated is committed)."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import av
import numpy as np


def png(width: int = 32, height: int = 24) -> bytes:
    """A valid RGB PNG with a colour gradient."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 128))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _audio(container: str, codec: str, seconds: float, rate: int) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate)
        stream.layout = "mono"
        samples = int(seconds * rate)
        tone = (np.sin(2 * np.pi * 440 * np.arange(samples) / rate) * 8000).astype(np.int16)
        step = 960
        for start in range(0, samples, step):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + step], format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()


def ogg_opus(seconds: float = 1.0) -> bytes:
    """A mono 440 Hz tone in Opus, in an Ogg container."""
    return _audio("ogg", "libopus", seconds, 48000)


def wav(seconds: float = 1.0) -> bytes:
    """A mono 440 Hz tone as 16-bit PCM WAV."""
    return _audio("wav", "pcm_s16le", seconds, 16000)


def webm_vp8(seconds: float = 1.0, fps: int = 10) -> bytes:
    """A 64x48 VP8 video with a moving bar, in WebM."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as muxer:
        stream = muxer.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * fps)):
            image = np.zeros((48, 64, 3), dtype=np.uint8)
            image[:, (i * 6) % 64 : (i * 6) % 64 + 6] = (255, 200, 0)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()


def pdf(text: str = "Compte rendu") -> bytes:
    """A minimal valid one-page PDF (hand-written objects, correct xref offsets)."""
    content = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def elf(size: int = 2048) -> bytes:
    """The start of a 64-bit Linux executable (ELF header), padded: what a disguised binary looks like."""
    header = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HHI", 2, 0x3E, 1)
    return header + bytes(range(256)) * (size // 256)

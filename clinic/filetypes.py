"""What a file is, decided from its first bytes; display names made safe."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

#: How many leading bytes sniff_media_type() looks at (enough for WebM's DocType and Ogg's codec).
HEAD_BYTES: Final = 4096

#: Longest name kept, in characters (the extension survives shortening).
MAX_NAME_CHARS: Final = 120

OCTET_STREAM: Final = "application/octet-stream"

#: Every type sniff_media_type() can return.
KNOWN_MEDIA_TYPES: Final = (
    "image/png", "image/jpeg", "image/gif", "image/webp",
    "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4",
    "video/webm", "video/x-matroska", "video/mp4", "video/ogg", "video/quicktime",
    "application/pdf", "text/plain", OCTET_STREAM,
)

# control characters that plain text may carry: tab, line feed, form feed, carriage return
_TEXT_CONTROLS: Final = frozenset(b"\t\n\f\r")
_FORBIDDEN: Final = re.compile(r'[<>:"/\\|?*]')
_SPACES: Final = re.compile(r"\s+")


def _is_mp3_frame(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0x3
    layer = (head[1] >> 1) & 0x3
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 0x3
    return version != 0b01 and layer != 0 and bitrate not in (0, 0xF) and rate != 0x3


def _is_utf8_text(head: bytes, complete: bool) -> bool:
    if not head:
        return False
    if any(b < 0x20 and b not in _TEXT_CONTROLS or b == 0x7F for b in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the end of the head is fine, unless the file ends there
        return not complete and exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def sniff_media_type(head: bytes, *, complete: bool = False) -> str:
    """Return the media type of a file from its first bytes (HEAD_BYTES suffice).

    `complete` says that `head` is the whole file (so a cut UTF-8 sequence at
    its end is an error).  Anything unrecognised is "application/octet-stream".
    """
    head = bytes(head[:HEAD_BYTES])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "video/ogg" if b"\x80theora" in head else "audio/ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML header: the DocType says WebM or Matroska
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide") and int.from_bytes(head[:4], "big") >= 8:
        return "video/quicktime"
    if head.startswith(b"ID3") or _is_mp3_frame(head):
        return "audio/mpeg"
    if _is_utf8_text(head, complete):
        return "text/plain"
    return OCTET_STREAM


def safe_name(name: str) -> str:
    """Return a display name without path parts or control characters, bounded, never empty."""
    name = unicodedata.normalize("NFC", str(name))
    # keep only the last path component, whichever separator the sender's system uses
    name = re.split(r"[/\\]", name)[-1]
    # Cc: control characters; Cf: invisible formatting (e.g. right-to-left override spoofing)
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = _FORBIDDEN.sub("_", name)
    name = _SPACES.sub(" ", name).strip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:MAX_NAME_CHARS].rstrip(" .")
    return name or "document"

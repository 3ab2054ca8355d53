"""What a file is, decided from its first bytes; display names made safe."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Final

#: How many leading bytes sniff_media_type() looks at (enough for WebM's DocType and Ogg's codec).
HEAD_BYTES: Final = 4096

#: Longest name kept, in characters (the extension survives shortening).
MAX_NAME_CHARS: Final = 120

OCTET_STREAM: Final = "application/octet-stream"

DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX: Final = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT: Final = "application/vnd.oasis.opendocument.text"
ODS: Final = "application/vnd.oasis.opendocument.spreadsheet"
ODP: Final = "application/vnd.oasis.opendocument.presentation"
DICOM: Final = "application/dicom"

#: Types that were "application/octet-stream" (or, for HEIC/HEIF/AVIF, wrongly "video/mp4")
#: before they were recognised: an allowed-types list that accepts any other file
#: (octet-stream) accepts them too, as downloads, so older configs keep working.
RECOGNISED_DOWNLOADS: Final = frozenset({
    "image/heic", "image/heif", "image/avif", DOCX, XLSX, PPTX, ODT, ODS, ODP, DICOM,
})

#: Every type sniff_media_type() can return.
KNOWN_MEDIA_TYPES: Final = (
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/heic", "image/heif",
    "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4",
    "video/webm", "video/x-matroska", "video/mp4", "video/ogg", "video/quicktime",
    "application/pdf", DOCX, XLSX, PPTX, ODT, ODS, ODP, DICOM, "text/plain", OCTET_STREAM,
)

# ISO-BMFF brands (ftyp box) of still pictures: AVIF, then HEVC-coded HEIC, then any HEIF
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_HEIC_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1", b"heif"})
# ZIP entries that name an Office Open XML document's kind
_OOXML_PARTS: Final = ((b"word/", DOCX), (b"xl/", XLSX), (b"ppt/", PPTX))
_ODF_TYPES: Final = {t.encode(): t for t in (ODT, ODS, ODP)}
_ZIP_ENTRY: Final = re.compile(rb"PK\x03\x04")

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


def _iso_bmff_type(head: bytes) -> str:
    """The type of an ISO-BMFF file from its ftyp box: major brand, then compatible brands."""
    size = min(max(int.from_bytes(head[:4], "big"), 16), len(head))
    brands = {head[8:12]} | {head[i:i + 4] for i in range(16, size - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "image/avif"
    if brands & _HEIC_BRANDS:
        return "image/heic"
    if brands & _HEIF_BRANDS:
        return "image/heif"
    if head[8:12] in (b"M4A ", b"M4B "):
        return "audio/mp4"
    if head[8:12] == b"qt  ":
        return "video/quicktime"
    return "video/mp4"


def _zip_type(head: bytes) -> str:
    """OpenDocument (its first entry `mimetype`, stored) or Office Open XML (a `word/`... entry)."""
    name_len = int.from_bytes(head[26:28], "little")
    extra_len = int.from_bytes(head[28:30], "little")
    if head[30:30 + name_len] == b"mimetype":
        start = 30 + name_len + extra_len
        declared = head[start:start + int.from_bytes(head[18:22], "little")]  # stored: its size is known
        if declared in _ODF_TYPES:
            return _ODF_TYPES[declared]
    for match in _ZIP_ENTRY.finditer(head):
        at = match.start()
        length = int.from_bytes(head[at + 26:at + 28], "little")
        name = head[at + 30:at + 30 + length]
        for prefix, media_type in _OOXML_PARTS:
            if name.startswith(prefix):
                return media_type
    return OCTET_STREAM


def accepted(media_type: str, allowed: Collection[str]) -> bool:
    """Whether an allowed-types list accepts a sniffed type (see RECOGNISED_DOWNLOADS)."""
    return media_type in allowed or (OCTET_STREAM in allowed and media_type in RECOGNISED_DOWNLOADS)


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
        return _iso_bmff_type(head)
    if head[128:132] == b"DICM":
        return DICOM
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(head)
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

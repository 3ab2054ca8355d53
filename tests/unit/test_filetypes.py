"""Media types sniffed from bytes, and display names made safe (pure functions)."""

from __future__ import annotations

import struct

import helpers.media_files as media_files
import pytest

from clinic.filetypes import HEAD_BYTES, MAX_NAME_CHARS, safe_name, sniff_media_type

GENERATED = [
    (media_files.png, "image/png"),
    (media_files.wav, "audio/wav"),
    (media_files.ogg_opus, "audio/ogg"),
    (media_files.webm_vp8, "video/webm"),
    (media_files.pdf, "application/pdf"),
    (media_files.elf, "application/octet-stream"),
]


@pytest.mark.parametrize(("make", "expected"), GENERATED, ids=[e[0].__name__ for e in GENERATED])
def test_generated_files(make: object, expected: str) -> None:
    data = make()  # type: ignore[operator]
    assert sniff_media_type(data[:HEAD_BYTES], complete=len(data) <= HEAD_BYTES) == expected


SIGNATURES = [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    (b"GIF87a\x01\x00\x01\x00", "image/gif"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x80theora", "video/ogg"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska", "video/x-matroska"),
    (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
    (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "audio/mp4"),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
    (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video/quicktime"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    (b"\xff\xfb\x90\x64" + b"\x00" * 60, "audio/mpeg"),
    ("Bonjour, résultats d'analyse\r\n\tOK\n".encode(), "text/plain"),
    (b"\xef\xbb\xbfwith a BOM", "text/plain"),
    # refused: executables, binary noise, NUL in text, invalid UTF-8, nothing at all
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "application/octet-stream"),
    (b"\x7fELF\x02\x01\x01\x00", "application/octet-stream"),
    (b"plain text\x00with a NUL", "application/octet-stream"),
    (b"latin-1 \xe9t\xe9 is not UTF-8", "application/octet-stream"),
    (b"\x1b[31mterminal escape", "application/octet-stream"),
    (b"", "application/octet-stream"),
    # a false MP3 sync: reserved layer bits
    (b"\xff\xf9\x90\x64", "application/octet-stream"),
]


@pytest.mark.parametrize(("head", "expected"), SIGNATURES)
def test_signatures(head: bytes, expected: str) -> None:
    assert sniff_media_type(head, complete=True) == expected


def test_a_utf8_character_cut_by_the_head_is_still_text() -> None:
    head = ("é" * HEAD_BYTES).encode()[: HEAD_BYTES - 1]
    assert sniff_media_type(head) == "text/plain"
    # but a whole file cannot end in the middle of a character
    assert sniff_media_type(head, complete=True) == "application/octet-stream"


def test_only_the_head_counts() -> None:
    assert sniff_media_type(b"A" * HEAD_BYTES + b"\x00\x00") == "text/plain"


def test_the_name_or_label_never_matters() -> None:
    exe = b"MZ" + struct.pack("<H", 0x90) + bytes(range(256)) * 4
    assert sniff_media_type(exe) == "application/octet-stream"


NAMES = [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\jeanne\\radio.png", "radio.png"),
    ("a\x00b\nc\td.txt", "abcd.txt"),
    ("invoice\u202egnp.exe", "invoicegnp.exe"),  # right-to-left override removed
    ("  spaced    out  .png  ", "spaced out .png"),
    ('what<>:"|?*.txt', "what_______.txt"),
    ("", "document"),
    ("..", "document"),
    ("/", "document"),
    ("\x01\x02", "document"),
    ("...hidden", "hidden"),
    ("e\u0301te\u0301.txt", "été.txt"),  # NFC
]


@pytest.mark.parametrize(("raw", "expected"), NAMES)
def test_safe_name(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_long_names_are_bounded_and_keep_their_extension() -> None:
    name = safe_name("x" * 1000 + ".jpeg")
    assert len(name) <= MAX_NAME_CHARS
    assert name.endswith("x.jpeg")
    assert len(safe_name("y" * 1000)) == MAX_NAME_CHARS

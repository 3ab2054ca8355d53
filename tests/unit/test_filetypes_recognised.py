"""Issue 17 item 8: HEIC/HEIF/AVIF are images, office files are documents, DICOM is recognised.

Before, every ISO-BMFF brand but M4A/qt was "video/mp4" (an iPhone photo offered as a
broken video) and office/DICOM files were anonymous downloads.  Samples are made here.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from clinic import filetypes
from clinic.filetypes import HEAD_BYTES, OCTET_STREAM, accepted, sniff_media_type
from signaling.config import DocumentsConfig


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    box = (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body
    return box + b"\x00\x00\x00\x18meta" + b"\x00" * 64


def office_zip(entries: list[tuple[str, bytes]], stored_first: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i, (name, data) in enumerate(entries):
            method = zipfile.ZIP_STORED if stored_first and i == 0 else zipfile.ZIP_DEFLATED
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return out.getvalue()


def ooxml(part: str) -> bytes:
    # the order Word/Excel/PowerPoint write, with realistic sizes before the telling entry
    filler = b"<?xml version='1.0'?>" + bytes(range(256)) * 4
    return office_zip([("[Content_Types].xml", filler), ("_rels/.rels", filler),
                       (f"{part}/document.xml", b"<w:document/>"), ("docProps/core.xml", filler)])


def odf(kind: str) -> bytes:
    return office_zip([("mimetype", f"application/vnd.oasis.opendocument.{kind}".encode()),
                       ("content.xml", b"<office:document-content/>"), ("META-INF/manifest.xml", b"<m/>")],
                      stored_first=True)


def dicom() -> bytes:
    # 128-byte preamble, "DICM", then a group-2 element (explicit VR little endian)
    return b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00" + b"\x00" * 200


SAMPLES = [
    ("heic-iphone", ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
    ("heic-mif1-major", ftyp(b"mif1", b"mif1", b"heic"), "image/heic"),
    ("heif", ftyp(b"mif1", b"mif1"), "image/heif"),
    ("avif", ftyp(b"avif", b"mif1", b"miaf"), "image/avif"),
    ("avif-compatible", ftyp(b"mif1", b"mif1", b"avif"), "image/avif"),
    ("avis", ftyp(b"avis", b"avis", b"msf1"), "image/avif"),
    ("mp4-still-video", ftyp(b"isom", b"isom", b"avc1"), "video/mp4"),
    ("m4a-still-audio", ftyp(b"M4A ", b"M4A ", b"mp42"), "audio/mp4"),
    ("docx", ooxml("word"), filetypes.DOCX),
    ("xlsx", ooxml("xl"), filetypes.XLSX),
    ("pptx", ooxml("ppt"), filetypes.PPTX),
    ("odt", odf("text"), filetypes.ODT),
    ("ods", odf("spreadsheet"), filetypes.ODS),
    ("odp", odf("presentation"), filetypes.ODP),
    ("plain-zip", office_zip([("notes.txt", b"hello"), ("more.bin", b"\x00" * 10)]), OCTET_STREAM),
    ("dicom", dicom(), filetypes.DICOM),
]


@pytest.mark.parametrize(("data", "expected"), [s[1:] for s in SAMPLES], ids=[s[0] for s in SAMPLES])
def test_sniffed_type(data: bytes, expected: str) -> None:
    assert sniff_media_type(data[:HEAD_BYTES], complete=len(data) <= HEAD_BYTES) == expected
    assert expected in filetypes.KNOWN_MEDIA_TYPES


def test_default_config_lists_every_recognised_type() -> None:
    allowed = DocumentsConfig().allowed_types
    assert set(filetypes.KNOWN_MEDIA_TYPES) == set(allowed)


def test_an_older_allowed_list_keeps_working() -> None:
    """A list written before (octet-stream = any other file) still accepts office files, as downloads."""
    old = ["image/png", "application/pdf", OCTET_STREAM]
    assert accepted(filetypes.DOCX, old) and accepted("image/heic", old) and accepted(filetypes.DICOM, old)
    assert not accepted("video/mp4", old)  # a type the operator left out stays refused
    strict = ["image/png", "application/pdf"]
    assert not accepted("image/heic", strict) and not accepted(filetypes.DOCX, strict)
    assert accepted("image/heic", ["image/heic"])

"""Background pages and saved boards (clinic/boardimages.py) on real files: PDFium, OpenCV, PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.pdfgen import write_pdf

from clinic import Role
from clinic.board import Background, Stroke
from clinic.boardimages import (
    BackgroundRefused,
    BoardImages,
    compose_png,
    import_background,
    sniff_background,
)


def image_file(path: Path, ext: str, width: int, height: int) -> Path:
    image = np.full((height, width, 3), 255, np.uint8)
    image[: height // 2, : width // 2] = (255, 0, 0)  # blue top-left quarter (BGR)
    ok, data = cv2.imencode(ext, image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".gif"])
def test_an_image_becomes_one_png_page_bounded_in_size(tmp_path: Path, ext: str) -> None:
    source = image_file(tmp_path / f"upload{ext}", ext, 1000, 500)
    bg = import_background(source, tmp_path / "out", max_px=400, max_pages=5)
    assert (bg.kind, bg.sizes) == ("image", ((400, 200),))
    page = read(tmp_path / "out" / bg.id / "page-0.png")
    assert page.shape == (200, 400, 3)
    b, g, r = (int(v) for v in page[50, 100])
    assert b > 200 and g < 60 and r < 60, (b, g, r)  # still blue where it was
    assert page[150, 300].min() > 200


def test_a_pdf_renders_its_first_page_now_and_the_others_when_asked(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "doc.pdf", [(100, 100, 200, 100), (0, 0, 80, 60)], width=400, height=300)
    bg = import_background(pdf, tmp_path / "out", max_px=800, max_pages=5)
    assert (bg.kind, bg.pages, bg.sizes) == ("pdf", 2, ((800, 600), (800, 600)))
    folder = tmp_path / "out" / bg.id
    assert sorted(p.name for p in folder.iterdir()) == ["page-0.png", "source.pdf"]
    page = read(folder / "page-0.png")
    # rectangle x 100..300, y 100..200 (bottom-up) of 400x300 points, at 2 px per point
    assert page[300, 400].max() < 30 and page[50, 50].min() > 225 and page[300, 100].min() > 225


async def test_pages_render_in_the_worker_and_are_cached(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "doc.pdf", [(100, 100, 200, 100), (0, 0, 80, 60)], width=400, height=300)
    images = BoardImages(tmp_path / "boards", max_px=400, max_pages=5)
    try:
        bg = await images.import_background("c1", pdf)
        path = await images.page_path("c1", bg, 1)
        page = read(path)
        assert page.shape == (300, 400, 3)
        assert page[290, 10].max() < 30 and page[150, 200].min() > 225  # bottom-left rectangle on page 2
        mtime = path.stat().st_mtime_ns
        assert await images.page_path("c1", bg, 1) == path and path.stat().st_mtime_ns == mtime
        with pytest.raises(BackgroundRefused):
            await images.page_path("c1", bg, 2)
        png = await images.board_png("c1", bg, 1, [Stroke("s", Role.PATIENT, f"{bg.id}/1", "#0b6bcb", 0.02, (0.5, 0.1, 0.9, 0.1))])
        board = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert board.shape == (300, 400, 3)
        b, g, r = (int(v) for v in board[30, 280])
        assert b > 150 and r < 60, (b, g, r)
        assert board[290, 10].max() < 30  # the page under the stroke
        blank = cv2.imdecode(np.frombuffer(await images.board_png("c1", None, 0, []), np.uint8), cv2.IMREAD_COLOR)
        assert blank.shape == (300, 400, 3) and blank.min() == 255  # 4:3, white
    finally:
        images.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"plain text pretending to be a picture", "only images"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "only images"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "could not be read"),
        (b"\xff\xd8\xff\xe0" + bytes(64), "could not be read"),
        (b"%PDF-1.7\n%%EOF\n", "could not be read"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(tmp_path: Path, content: bytes, message: str) -> None:
    source = tmp_path / "upload"
    source.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BackgroundRefused, match=message):
        import_background(source, out, max_px=400, max_pages=5)
    assert list(out.iterdir()) == []


def test_too_many_pages_is_refused(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "long.pdf", [(0, 0, 10, 10)] * 4)
    with pytest.raises(BackgroundRefused, match="1 to 3 pages"):
        import_background(pdf, tmp_path / "out", max_px=400, max_pages=3)


def test_sniffing_reads_bytes_not_names() -> None:
    assert sniff_background(b"%PDF-1.4 ...") == "pdf"
    assert sniff_background(b"GIF89a....") == "image"
    assert sniff_background(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image"
    assert sniff_background(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_background(b"") is None


def test_compose_draws_a_single_point_as_a_dot() -> None:
    png = compose_png(None, (100, 75), [Stroke("dot", Role.PRACTITIONER, "blank", "#1b2733", 0.05, (0.5, 0.5))])
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image[37, 50].max() < 80 and image[5, 5].min() == 255
    assert Background("x", "image", ((1, 1),)).pages == 1


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".gif"])
def test_image_size_reads_the_header(tmp_path: Path, ext: str) -> None:
    from clinic.boardimages import image_size

    path = image_file(tmp_path / f"x{ext}", ext, 321, 123)
    assert image_size(path.read_bytes()[:262144]) == (321, 123)


def test_a_picture_claiming_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    # a real PNG header that declares 20000 x 20000 pixels, then nothing worth decoding
    source = image_file(tmp_path / "bomb.png", ".png", 4, 4)
    data = bytearray(source.read_bytes())
    data[16:24] = (20000).to_bytes(4, "big") * 2
    source.write_bytes(bytes(data))
    with pytest.raises(BackgroundRefused, match="too large"):
        import_background(source, tmp_path / "out", max_px=400, max_pages=5)

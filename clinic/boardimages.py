"""Pictures of the whiteboard: background pages rendered to PNG, and the board saved as PNG.

PDF pages go through PDFium (pypdfium2), images through OpenCV; both are
re-encoded as PNG at a bounded size, so a browser only ever gets our own PNG.
PDFium is not thread-safe, so `BoardImages` runs all of this work in one
dedicated worker thread, never on the event loop.  With a key ring, the PDF and
the PNG pages are sealed on disk (sealing/) and decrypted into memory to be read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import pathlib
import struct
import uuid
from collections.abc import Callable, Iterable
from typing import Final, Literal, ParamSpec, TypeVar

# refuse decompression bombs: a small file that decodes to gigapixels
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(40_000_000))  # also checked below, see MAX_PIXELS

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pypdfium2 as pdfium  # noqa: E402

from sealing import Keyring, SealedWriter, open_file, seal_file  # noqa: E402

from .board import Background, Stroke  # noqa: E402
from .errors import ClinicError  # noqa: E402
from .filetypes import HEAD_BYTES, sniff_media_type  # noqa: E402

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

BackgroundKind = Literal["image", "pdf"]
#: Board size when there is no background: 4:3.
BLANK_ASPECT = (4, 3)


class BackgroundRefused(ClinicError):
    """An uploaded background is not an image or PDF we can show; the message says why."""


_IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def sniff_background(head: bytes) -> BackgroundKind | None:
    """'image' or 'pdf' from the first bytes of a file (never from its name or label), else None."""
    media_type = sniff_media_type(head)
    if media_type == "application/pdf":
        return "pdf"
    return "image" if media_type in _IMAGE_TYPES else None


#: Largest picture decoded, in pixels (a small file may claim gigapixels).
MAX_PIXELS: Final = 40_000_000


def image_size(head: bytes) -> tuple[int, int] | None:
    """Width and height an image file declares in its header (PNG, GIF, WebP, JPEG), without decoding it."""
    if head.startswith(b"\x89PNG") and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])
        return int(w), int(h)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        chunk = head[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", head[26:30])
            return int(w) & 0x3FFF, int(h) & 0x3FFF
        if chunk == b"VP8L":
            b = head[21:25]
            return 1 + (b[0] | (b[1] & 0x3F) << 8), 1 + (b[1] >> 6 | b[2] << 2 | (b[3] & 0xF) << 10)
        if chunk == b"VP8X":
            return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if head.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 <= len(head) and head[i] == 0xFF:
            marker = head[i + 1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", head[i + 5:i + 9])
                return int(w), int(h)
            i += 2 + struct.unpack(">H", head[i + 2:i + 4])[0]
    return None


def _fit(width: float, height: float, max_px: int) -> tuple[int, int]:
    scale = max_px / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _write_png(path: pathlib.Path, image: np.ndarray, keyring: Keyring | None = None) -> None:
    """Encode and write atomically (temporary name, fsync, rename), sealed with a key ring."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ClinicError("could not encode PNG")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as f:
            if keyring is None:
                f.write(data.tobytes())
            else:
                writer = SealedWriter(f, keyring)
                writer.write(data.tobytes())
                writer.finish()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_stored(path: pathlib.Path, keyring: Keyring | None) -> bytes:
    """A stored page or PDF's plain bytes (blocking)."""
    with open_file(path, keyring) as f:
        return f.read()


def _render_pdf_page(source: pathlib.Path, page: int, max_px: int, keyring: Keyring | None = None) -> np.ndarray:
    pdf = pdfium.PdfDocument(read_stored(source, keyring) if keyring is not None else str(source))
    try:
        p = pdf[page]
        try:
            width, height = p.get_size()
            bitmap = p.render(scale=max_px / max(width, height, 1.0), fill_color=(255, 255, 255, 255))
            try:
                # BGR(A) in PDFium's byte order: what OpenCV expects
                pixels = np.array(bitmap.to_numpy(), copy=True)
            finally:
                bitmap.close()
        finally:
            p.close()
    finally:
        pdf.close()
    return pixels[:, :, :3] if pixels.ndim == 3 and pixels.shape[2] == 4 else pixels


def import_background(source: pathlib.Path, folder: pathlib.Path, *, max_px: int, max_pages: int,
                      keyring: Keyring | None = None) -> Background:
    """Check an uploaded file and render its first page into `folder` (blocking).

    `source` is moved into `folder`; the other pages of a PDF are rendered when first asked.
    Raises BackgroundRefused for a file that is not a readable image or PDF.
    """
    with source.open("rb") as f:
        kind = sniff_background(f.read(HEAD_BYTES))
    if kind is None:
        raise BackgroundRefused("only images (PNG, JPEG, GIF, WebP) and PDF documents can be shown on the board")
    bg_id = uuid.uuid4().hex
    target = folder / bg_id
    target.mkdir(parents=True)
    try:
        if kind == "image":
            with source.open("rb") as f:
                declared = image_size(f.read(262144))
            if declared is not None and declared[0] * declared[1] > MAX_PIXELS:
                raise BackgroundRefused("this image could not be read (damaged, or too large)")
            try:
                image = cv2.imread(str(source), cv2.IMREAD_COLOR)
            except cv2.error:
                image = None
            if image is None:
                raise BackgroundRefused("this image could not be read (damaged, or too large)")
            height, width = image.shape[:2]
            size = _fit(width, height, max_px)
            if max(width, height) > max_px:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            else:
                size = (width, height)
            _write_png(target / "page-0.png", image, keyring)
            sizes: tuple[tuple[int, int], ...] = (size,)
        else:
            try:
                pdf = pdfium.PdfDocument(str(source))
            except pdfium.PdfiumError:
                raise BackgroundRefused("this PDF could not be read (damaged or protected)") from None
            try:
                count = len(pdf)
                if count == 0 or count > max_pages:
                    raise BackgroundRefused(f"a PDF on the board has 1 to {max_pages} pages (this one has {count})")
                sizes = tuple(_fit(float(w), float(h), max_px) for w, h in (pdf.get_page_size(i) for i in range(count)))
            finally:
                pdf.close()
            if keyring is None:
                os.replace(source, target / "source.pdf")
            else:
                seal_file(source, target / "source.pdf", keyring)
            _write_png(target / "page-0.png", _render_pdf_page(target / "source.pdf", 0, max_px, keyring), keyring)
    except BaseException:
        for path in target.iterdir():
            path.unlink()
        target.rmdir()
        raise
    return Background(id=bg_id, kind=kind, sizes=sizes)


def compose_png(background: np.ndarray | None, size: tuple[int, int], strokes: Iterable[Stroke]) -> bytes:
    """The board as a PNG: the background page (or white) with the strokes over it, `size` = (w, h)."""
    width, height = size
    image: np.ndarray
    if background is None:
        image = np.full((height, width, 3), 255, np.uint8)
    else:
        image = cv2.resize(background, size, interpolation=cv2.INTER_AREA) \
            if background.shape[1::-1] != size else background.copy()
    for stroke in strokes:
        colour = tuple(int(stroke.color[i:i + 2], 16) for i in (5, 3, 1))  # BGR
        thickness = max(1, round(stroke.width * width))
        xy = np.array(stroke.points, dtype=np.float64).reshape(-1, 2) * (width - 1, height - 1)
        pts = np.rint(xy).astype(np.int32)
        if len(pts) == 1:
            cv2.circle(image, tuple(int(v) for v in pts[0]), max(1, thickness // 2), colour, -1, cv2.LINE_AA)
        else:
            cv2.polylines(image, [pts.reshape(-1, 1, 2)], False, colour, thickness, cv2.LINE_AA)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ClinicError("could not encode PNG")
    return bytes(data.tobytes())


class BoardImages:
    """Background pages on disk under `root/<consultation_id>/<background_id>/`, rendered in one thread."""

    def __init__(self, root: pathlib.Path, *, max_px: int, max_pages: int, keyring: Keyring | None = None) -> None:
        self.root = root
        self.keyring = keyring
        self.max_px = max_px
        self.max_pages = max_pages
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="board-images")

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def folder(self, consultation_id: str) -> pathlib.Path:
        return self.root / consultation_id

    async def import_background(self, consultation_id: str, source: pathlib.Path) -> Background:
        return await self._run(import_background, source, self.folder(consultation_id),
                               max_px=self.max_px, max_pages=self.max_pages, keyring=self.keyring)

    async def page_path(self, consultation_id: str, background: Background, page: int) -> pathlib.Path:
        """The PNG of one page, rendered (once, then cached on disk) when first asked."""
        if not 0 <= page < background.pages:
            raise BackgroundRefused("no such page")
        return await self._run(self._page_path, consultation_id, background, page)

    def _page_path(self, consultation_id: str, background: Background, page: int) -> pathlib.Path:
        folder = self.folder(consultation_id) / background.id
        path = folder / f"page-{page}.png"
        if not path.exists():
            try:
                pixels = _render_pdf_page(folder / "source.pdf", page, self.max_px, self.keyring)
            except (pdfium.PdfiumError, OSError) as exc:
                logger.warning("Background(%s) page %d could not be rendered: %s", background.id, page, type(exc).__name__)
                raise BackgroundRefused("this page could not be rendered") from None
            _write_png(path, pixels, self.keyring)
        return path

    async def board_png(self, consultation_id: str, background: Background | None, page: int,
                        strokes: list[Stroke]) -> bytes:
        """The board's current sheet as PNG, at the background page's size (or 4:3 at max_px)."""
        return await self._run(self._board_png, consultation_id, background, page, strokes)

    def _board_png(self, consultation_id: str, background: Background | None, page: int,
                   strokes: list[Stroke]) -> bytes:
        if background is None:
            return compose_png(None, _fit(*BLANK_ASPECT, self.max_px), strokes)
        stored = read_stored(self._page_path(consultation_id, background, page), self.keyring)
        image = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ClinicError("background page missing")
        return compose_png(image, background.sizes[page], strokes)

    def close(self) -> None:
        """Stop the worker thread (after the work already queued); safe to call twice."""
        self._executor.shutdown(wait=False)

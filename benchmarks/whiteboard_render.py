"""What the whiteboard's limits cost: page rendering, saving a full board, the state a (re)joining tab gets.

    .venv/bin/python benchmarks/whiteboard_render.py [--max-px 1600] [--strokes 1000] [--points 200]

Prints, each the median of --repeat runs (a PDF and the strokes are made here):
- PDFium: opening a PDF and rendering one page to PNG at --max-px (what a first view costs);
- OpenCV: a board of --strokes strokes of --points points composed over that page and
  encoded as PNG (what "save" costs), and the PNG's size;
- the `whiteboard` message a (re)joining tab receives for that board: its JSON size and
  the time to build and serialise it.
The work runs in one thread, as in the server (its worker thread), never on the event loop.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from clinic import Role  # noqa: E402
from clinic.board import Board, BoardLimits, Stroke  # noqa: E402
from clinic.boardimages import _render_pdf_page, _write_png, compose_png  # noqa: E402
from helpers.pdfgen import write_pdf  # noqa: E402


def median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-px", type=int, default=1600)
    parser.add_argument("--strokes", type=int, default=1000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = write_pdf(Path(tmp) / "doc.pdf", [(50, 50, 300, 200)], width=595, height=842)  # A4 portrait
        page = Path(tmp) / "page.png"
        render = median_ms(lambda: _write_png(page, _render_pdf_page(pdf, 0, args.max_px)), args.repeat)
        pixels = _render_pdf_page(pdf, 0, args.max_px)
        height, width = pixels.shape[:2]
        strokes = []
        for i in range(args.strokes):
            x, y = rng.random(), rng.random()
            pts: list[float] = []
            for _ in range(args.points):
                x = min(1.0, max(0.0, x + rng.uniform(-0.01, 0.01)))
                y = min(1.0, max(0.0, y + rng.uniform(-0.01, 0.01)))
                pts += [round(x, 5), round(y, 5)]
            strokes.append(Stroke(f"s{i}", Role.PRACTITIONER, "blank", "#c62828", 0.008, tuple(pts)))
        png: bytes = b""

        def save() -> None:
            nonlocal png
            png = compose_png(pixels, (width, height), strokes)

        compose = median_ms(save, args.repeat)
        board = Board(BoardLimits(max_points_per_stroke=args.points, max_strokes=args.strokes))
        for s in strokes:
            board.add_stroke(s)
        text = ""

        def state() -> None:
            nonlocal text
            text = json.dumps({"type": "whiteboard", **board.settings_json(),
                               "strokes": [s.as_json() for s in board.visible_strokes()]})

        full = median_ms(state, args.repeat)
    print(f"page {width}x{height} px: PDFium render + PNG write {render:.1f} ms")
    print(f"board of {args.strokes} strokes x {args.points} points: compose + PNG encode {compose:.1f} ms, "
          f"PNG {len(png) / 1024:.0f} KiB")
    print(f"'whiteboard' message for that board: {len(text) / 1024:.0f} KiB of JSON, built in {full:.1f} ms")


if __name__ == "__main__":
    main()

"""The [whiteboard] section of config.toml: defaults, strict decoding, bounds named in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.config import WhiteboardConfig, load_config
from signaling.errors import ConfigError


def test_defaults() -> None:
    wb = load_config(None).whiteboard
    assert wb == WhiteboardConfig()
    assert (wb.max_points_per_stroke, wb.max_strokes, wb.pointer_rate) == (2000, 1000, 30.0)


def test_a_good_file_sets_the_values(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[whiteboard]\nmax_strokes = 50\npointer_rate = 20\npage_max_px = 800\n", encoding="utf-8")
    wb = load_config(path).whiteboard
    assert (wb.max_strokes, wb.pointer_rate, wb.page_max_px) == (50, 20.0, 800)
    assert isinstance(wb.pointer_rate, float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_strokes = 0", "'whiteboard.max_strokes' must be between 1 and 100000"),
        ("max_points_per_stroke = 1", "'whiteboard.max_points_per_stroke' must be between 2"),
        ("undo_depth = 0", "'whiteboard.undo_depth'"),
        ("max_message_bytes = 10", "'whiteboard.max_message_bytes' must be between 1024"),
        ("max_upload_bytes = 0", "'whiteboard.max_upload_bytes'"),
        ("max_pdf_pages = 0", "'whiteboard.max_pdf_pages'"),
        ("page_max_px = 10", "'whiteboard.page_max_px'"),
        ("pointer_rate = 0.5", "'whiteboard.pointer_rate' must be between 1 and 120"),
        ("pointer_rate = nan", "'whiteboard.pointer_rate' must be a finite number"),
        ('max_strokes = "10"', "'whiteboard.max_strokes' must be an integer"),
        ("max_strokes = 10.0", "'whiteboard.max_strokes' must be an integer"),
        ("max_stroke = 10", "unknown key 'whiteboard.max_stroke'"),
    ],
)
def test_a_bad_value_names_the_key_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[whiteboard]\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)

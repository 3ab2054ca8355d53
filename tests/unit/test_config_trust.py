"""The issue-19 keys: key file, audit checkpoints, retention, practice contact; defaults and bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealing import generate_key
from signaling.config import load_config
from signaling.errors import ConfigError


def test_defaults() -> None:
    config = load_config(None)
    assert config.recording.require_consent is True  # the patient is asked before a recording
    assert config.key_path is None and config.audit.checkpoint_seconds == 300.0
    assert (config.retention.record_days, config.documents.retention_days, config.practice.contact) == (7300, 0, "")


def test_a_key_file_is_read_when_the_config_is(tmp_path: Path) -> None:
    generate_key(tmp_path / "keys")
    assert load_config(None, **{"storage.key_file": str(tmp_path / "keys")}).key_path == tmp_path / "keys"
    (tmp_path / "bad").write_text("k1 not-hex\n")
    with pytest.raises(ConfigError, match=r"'storage.key_file' is not usable: .* line 1"):
        load_config(None, **{"storage.key_file": str(tmp_path / "bad")})
    with pytest.raises(ConfigError, match="'storage.key_file' is not usable: .*cannot read"):
        load_config(None, **{"storage.key_file": str(tmp_path / "missing")})


@pytest.mark.parametrize(("overrides", "words"), [
    ({"audit.checkpoint_seconds": 0.5}, "'audit.checkpoint_seconds' must be between 1 and 86400"),
    ({"retention.record_days": -1}, "'retention.record_days' must be between 0 and 36500"),
    ({"documents.retention_days": -3}, "'documents.retention_days' must be 0 (keep) or a number of days"),
    ({"practice.contact": "x" * 301}, "'practice.contact' must be at most 300 characters"),
])
def test_bad_values_are_named(overrides: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, **overrides)
    assert words in str(exc.value)

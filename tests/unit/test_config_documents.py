"""The [documents] and [chat] sections: defaults, and bad values named by key."""

from __future__ import annotations

from typing import Any

import pytest

from clinic.filetypes import KNOWN_MEDIA_TYPES
from signaling.config import load_config
from signaling.errors import ConfigError


def test_defaults() -> None:
    config = load_config(None)
    assert config.documents.max_upload_bytes == 100 * 1024 * 1024
    assert set(config.documents.allowed_types) == set(KNOWN_MEDIA_TYPES)
    assert (config.chat.max_chars, config.chat.max_per_minute, config.chat.history_limit) == (4000, 60, 500)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"documents.max_upload_bytes": 0}, "'documents.max_upload_bytes' must be at least 1"),
        ({"documents.max_upload_bytes": "100M"}, "'documents.max_upload_bytes' must be an integer"),
        ({"documents.allowed_types": ["image/png", "application/x-msdownload"]},
         "'documents.allowed_types[1]' is 'application/x-msdownload', not one of image/png"),
        ({"documents.allowed_types": "image/png"}, "'documents.allowed_types' must be a list"),
        ({"documents.inline": True}, "unknown key 'documents.inline'"),
        ({"chat.max_chars": 0}, "'chat.max_chars' must be between 1 and 100000"),
        ({"chat.max_per_minute": 0}, "'chat.max_per_minute' must be at least 1"),
        ({"chat.history_limit": -5}, "'chat.history_limit' must be at least 1"),
    ],
)
def test_bad_values_name_the_key(overrides: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, **overrides)
    assert words in str(info.value)


def test_an_empty_type_list_refuses_every_upload_but_loads() -> None:
    assert load_config(None, **{"documents.allowed_types": []}).documents.allowed_types == []

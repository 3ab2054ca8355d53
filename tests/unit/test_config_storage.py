"""[storage] folders per kind of file, [database] url and [cluster]: defaults, resolution, checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.config import load_config
from signaling.errors import ConfigError


def test_every_folder_defaults_to_one_inside_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[storage]\ndata_dir = "data"\n')
    config = load_config(path)
    data = (tmp_path / "data").resolve()
    assert (config.documents_path, config.whiteboard_path, config.recordings_path) == (
        data / "documents", data / "whiteboard", data / "recordings")
    assert config.database.url == ""


def test_folders_may_live_elsewhere_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    path.write_text('[storage]\ndocuments_dir = "../shared/documents"\nwhiteboard_dir = "/mnt/shared/wb"\n'
                    '[database]\nurl = "postgresql://tc@db.internal/tc"\n')
    config = load_config(path)
    assert config.documents_path == (tmp_path / "shared" / "documents").resolve()
    assert config.whiteboard_path == Path("/mnt/shared/wb")
    assert config.recordings_path == (tmp_path / "etc" / "data" / "recordings").resolve()
    assert config.database.url == "postgresql://tc@db.internal/tc"


@pytest.mark.parametrize("url", ["sqlite:///x.db", "db.internal", "mysql://x"])
def test_a_database_url_must_name_postgresql(tmp_path: Path, url: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match="'database.url' must be empty"):
        load_config(path)


@pytest.mark.parametrize(("text", "message"), [
    ('redis_url = "http://x"', "'cluster.redis_url' must be empty"),
    ("heartbeat_seconds = 6.0", "'cluster.heartbeat_seconds' must be positive and at most half"),
    ("heartbeat_seconds = 0.0", "'cluster.heartbeat_seconds' must be positive"),
    ('site_url = "teleconsult.example"', "'cluster.site_url' must be empty or an http"),
    ('site_url = "https://teleconsult.example/c/x"', "'cluster.site_url' must be empty or an http"),
])
def test_cluster_settings_are_checked(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[cluster]\n{text}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_site_address_may_be_set(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[cluster]\nsite_url = "https://teleconsult.example"\n')
    assert load_config(path).cluster.site_url == "https://teleconsult.example"

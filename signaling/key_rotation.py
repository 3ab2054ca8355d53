"""`teleconsult keys`: create a key file, rotate keys, re-seal stored files with the current key.

Re-sealing runs file by file next to a live server: each file is written sealed
under a temporary name, then renamed over the old one (a reader holding the old
file keeps reading it); the server learns a new key id from the key file when it
first meets it.  Recordings still being written are left alone.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sealing import Keyring, SealError, generate_key, seal_file
from sealing.stream import MAGIC

logger = logging.getLogger(__name__)

#: Folders under the data dir whose files are sealed.
SEALED_DIRS: Final = ("documents", "recordings", "whiteboard")
_SKIP_NAMES: Final = ("manifest.json",)


@dataclass
class Resealed:
    files: int = 0
    skipped: int = 0
    failed: int = 0


def _key_id_of(path: Path) -> str | None:
    """The key id in a sealed file's header, "" for a plain file."""
    with path.open("rb") as f:
        head = f.read(len(MAGIC) + 1 + 255)
    if not head.startswith(MAGIC):
        return ""
    n = head[len(MAGIC)]
    return head[len(MAGIC) + 1:len(MAGIC) + 1 + n].decode("ascii", "replace")


def _recording_busy(folder: Path) -> bool:
    try:
        state = json.loads((folder / "manifest.json").read_text()).get("state")
    except (OSError, ValueError, AttributeError):
        return False
    return bool(state == "recording")


def stored_files(data_dir: Path) -> Iterator[Path]:
    """Every finished stored file under the sealed folders (no temporary or in-progress files)."""
    for name in SEALED_DIRS:
        root = data_dir / name
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name.startswith(".") or path.name.endswith((".part", ".tmp")):
                continue
            if path.name in _SKIP_NAMES or (name == "recordings" and _recording_busy(path.parent)):
                continue
            yield path


def reseal(data_dir: Path, keyring: Keyring) -> Resealed:
    """Seal every stored file not sealed with the current key (plain ones too) (blocking)."""
    done = Resealed()
    current = keyring.current_id
    for path in stored_files(data_dir):
        try:
            if _key_id_of(path) == current:
                done.skipped += 1
                continue
            tmp = path.with_name(f".{path.name}.reseal.tmp")
            try:
                seal_file(path, tmp, keyring)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            done.files += 1
        except (OSError, SealError) as exc:
            logger.error("%s not re-sealed: %s", path.relative_to(data_dir), exc)
            done.failed += 1
    return done


def rotate(key_file: Path, data_dir: Path) -> tuple[str, Resealed]:
    """Add a new key (it writes from now on) and re-seal every stored file with it (blocking)."""
    key_id = generate_key(key_file)
    keyring = Keyring(key_file)
    logger.info("Key %s added to %s; re-sealing stored files", key_id, key_file)
    return key_id, reseal(data_dir, keyring)

"""Data files kept private, and temporary files a crash left behind swept away.

Patient data lives under the data folder (database, documents, recordings, boards)
and in the outbox (emails holding patients' links): the folders are made 0700 and
the files we create 0600, so no other account on the machine reads them.
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Final

logger = logging.getLogger(__name__)

PRIVATE_FILE: Final = 0o600
PRIVATE_DIR: Final = 0o700
#: What `teleconsult serve` runs under: every file any library creates is private too.
PRIVATE_UMASK: Final = 0o077

# names of files being written: documents' `.<id>.part`, atomic writes' `.<name>.<hex>.tmp`,
# a whiteboard background's `.upload-<hex>`
_TEMP_SUFFIXES: Final = (".part", ".tmp")
_TEMP_PREFIXES: Final = (".upload-",)


def is_temporary(name: str) -> bool:
    """Whether a file name is one of our temporary names (hidden, never a finished file)."""
    return name.startswith(".") and (name.endswith(_TEMP_SUFFIXES) or name.startswith(_TEMP_PREFIXES))


def private_dir(path: pathlib.Path) -> None:
    """Create the folder if needed and make it 0700 (blocking)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)


def create_private_file(path: pathlib.Path) -> None:
    """Create an empty file 0600 if it does not exist, else make it 0600 (blocking)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def sweep_temporary(root: pathlib.Path) -> int:
    """Delete every temporary file under `root` (at start, before anything writes); return how many.

    Only call it when nothing of this server is writing: a crash (even SIGKILL) leaves
    these names behind, and nothing else ever reads them.
    """
    removed = 0
    if not root.is_dir():
        return 0
    for folder, _, names in os.walk(root):
        for name in names:
            if is_temporary(name):
                pathlib.Path(folder, name).unlink(missing_ok=True)
                removed += 1
    if removed:
        logger.warning("Removed %d unfinished temporary file(s) left by a previous run under %s", removed, root)
    return removed

"""The key file: one key per line, `<key id> <64 hex digits>`; the last line is the one writing.

Older keys stay in the file so files sealed with them can still be read until
`teleconsult keys rotate` has re-sealed them.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from pathlib import Path
from typing import Final

from .errors import SealError

_LINE: Final = re.compile(r"([A-Za-z0-9_-]{1,64})\s+([0-9a-fA-F]{64})")
KEY_BYTES: Final = 32


def parse(text: str, where: str) -> tuple[dict[str, bytes], str]:
    """Keys by id and the current (last) id; SealError naming the line when one is wrong."""
    keys: dict[str, bytes] = {}
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise SealError(f"{where} line {number}: expected '<key id> <64 hex digits>'")
        if match[1] in keys:
            raise SealError(f"{where} line {number}: key id {match[1]!r} appears twice")
        keys[match[1]] = bytes.fromhex(match[2])
        current = match[1]
    if not keys:
        raise SealError(f"{where}: no key in the file")
    return keys, current


class Keyring:
    """The keys of one key file; thread-safe.

    Re-read when the file changed (a rotation: new files get the new key at once)
    and when a sealed file names a key it does not know yet.
    """

    def __init__(self, path: Path) -> None:
        """Read the key file now (SealError if it is missing or wrong)."""
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._mtime()
        self._keys, self.current_id = self._read()

    def _mtime(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return -1

    def _read(self) -> tuple[dict[str, bytes], str]:
        try:
            text = self.path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SealError(f"key file {self.path}: cannot read it ({type(exc).__name__})") from None
        return parse(text, f"key file {self.path}")

    @property
    def current(self) -> tuple[str, bytes]:
        """The id and key new files are sealed with (blocking: a stat of the key file)."""
        with self._lock:
            stamp = self._mtime()
            if stamp != self._stamp:
                try:
                    self._keys, self.current_id = self._read()
                    self._stamp = stamp
                except SealError:
                    pass  # a file being rewritten: keep sealing with the key known
            return self.current_id, self._keys[self.current_id]

    def key(self, key_id: str) -> bytes:
        """The key with this id, re-reading the file once if it is unknown (rotated meanwhile)."""
        with self._lock:
            if key_id not in self._keys:
                self._keys, self.current_id = self._read()
            try:
                return self._keys[key_id]
            except KeyError:
                raise SealError(f"no key {key_id!r} in {self.path}") from None



def generate_key(path: Path) -> str:
    """Append a new random key to the key file (created with mode 0600); returns its id."""
    key_id = f"k{secrets.token_hex(4)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, f"{key_id} {secrets.token_hex(KEY_BYTES)}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key_id

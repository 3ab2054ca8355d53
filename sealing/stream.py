"""The sealed file format: a header, then AES-256-GCM chunks of 64 KiB of plain bytes each.

    header = b"TCSEAL\\x00\\x01" | key id length (1 byte) | key id (ASCII) | nonce prefix (8 random bytes)
    chunk i = AES-GCM(key, nonce = prefix | i (4 bytes), aad = header | i (8 bytes) | final flag (1 byte))

Every chunk but the last holds exactly CHUNK plain bytes, the last one 0 to CHUNK
and the final flag.  Binding the index and the flag in each chunk means chunks
cannot be swapped, dropped or the file cut short without the read failing; a
fixed chunk size means a byte range is read by decrypting only its chunks.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SealError
from .keyring import Keyring

MAGIC: Final = b"TCSEAL\x00\x01"
CHUNK: Final = 64 * 1024
TAG: Final = 16
_PREFIX: Final = 8
_MAX_CHUNKS: Final = 1 << 32


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _nonce(prefix: bytes, index: int) -> bytes:
    if index >= _MAX_CHUNKS:
        raise SealError("file too large to seal (2**32 chunks)")
    return prefix + index.to_bytes(4, "big")


class SealedWriter:
    """Seals what is written to `sink` (a binary file opened for writing); finish() or close() ends it.

    Not thread-safe; only whole chunks reach `sink` before finish(), so a crash
    loses at most the last CHUNK bytes.
    """

    def __init__(self, sink: BinaryIO, keyring: Keyring) -> None:
        key_id, key = keyring.current
        self.key_id = key_id
        self._sink = sink
        self._aead = AESGCM(key)
        self._prefix = os.urandom(_PREFIX)
        raw_id = key_id.encode("ascii")
        self._header = MAGIC + bytes([len(raw_id)]) + raw_id + self._prefix
        self._buffer = bytearray()
        self._index = 0
        self._finished = False
        sink.write(self._header)

    def _emit(self, data: bytes | memoryview, final: bool) -> None:
        index = self._index
        self._sink.write(self._aead.encrypt(_nonce(self._prefix, index), data, _aad(self._header, index, final)))
        self._index += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Take `data` (any size); returns its length."""
        if self._finished:
            raise ValueError("sealed file already finished")
        self._buffer += data
        if len(self._buffer) > CHUNK:
            # keep at least one byte back: the last chunk must be the one flagged final
            pos = 0
            with memoryview(self._buffer) as view:
                while len(self._buffer) - pos > CHUNK:
                    self._emit(view[pos:pos + CHUNK], False)
                    pos += CHUNK
            del self._buffer[:pos]
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def finish(self) -> None:
        """Write the final chunk (safe to call twice); the sink stays open."""
        if not self._finished:
            self._finished = True
            self._emit(bytes(self._buffer), True)
            self._buffer.clear()
            self._sink.flush()

    def close(self) -> None:
        """finish(), then close the sink."""
        try:
            self.finish()
        finally:
            self._sink.close()


def _read_header(f: BinaryIO) -> tuple[bytes, str, bytes] | None:
    """(header, key id, nonce prefix), or None when the file is not sealed (plain)."""
    f.seek(0)
    start = f.read(len(MAGIC) + 1)
    if len(start) < len(MAGIC) + 1 or start[:len(MAGIC)] != MAGIC:
        return None
    rest = f.read(start[-1] + _PREFIX)
    if len(rest) != start[-1] + _PREFIX:
        raise SealError("sealed file header cut short")
    try:
        key_id = rest[:start[-1]].decode("ascii")
    except UnicodeDecodeError:
        raise SealError("sealed file header damaged") from None
    return start + rest, key_id, rest[start[-1]:]


class SealedReader(io.RawIOBase):
    """A sealed file read like a plain one: read(), seek(), tell(); only the chunks needed are decrypted.

    `tolerate_cut`: accept a file whose writer died before its final chunk (a
    crashed recording): it ends with its last whole chunk.  SealError on any
    altered, reordered or (unless tolerated) missing chunk, and on an unknown key.
    """

    def __init__(self, f: BinaryIO, keyring: Keyring, *, tolerate_cut: bool = False) -> None:
        super().__init__()
        found = _read_header(f)
        if found is None:
            raise SealError("not a sealed file")
        self._f = f
        self._header, self.key_id, self._prefix = found
        self._aead = AESGCM(keyring.key(self.key_id))
        body = os.fstat(f.fileno()).st_size - len(self._header)
        step = CHUNK + TAG
        self._count = -(-body // step)
        last = body - (self._count - 1) * step - TAG
        self._cache: tuple[int, bytes] | None = None
        self._final = True
        if self._count == 0 or last < 0:
            if not tolerate_cut:
                raise SealError("sealed file cut short")
            self._count = body // step  # drop the partial chunk
            last = CHUNK
            self._final = False
        elif tolerate_cut:
            try:
                self._chunk(self._count - 1)
            except SealError:
                self._final = False
        self.size = max(0, (self._count - 1) * CHUNK + last) if self._count else 0
        self._pos = 0

    def _decrypt(self, index: int, data: bytes | memoryview) -> bytes:
        final = self._final and index == self._count - 1
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, index), data, _aad(self._header, index, final))
        except InvalidTag:
            raise SealError(f"sealed file damaged or altered (chunk {index})") from None
        if len(plain) != CHUNK and index != self._count - 1:
            raise SealError(f"sealed file damaged (chunk {index} is short)")
        return plain

    def _chunk(self, index: int) -> bytes:
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]
        step = CHUNK + TAG
        self._f.seek(len(self._header) + index * step)
        plain = self._decrypt(index, self._f.read(step))
        self._cache = (index, plain)
        return plain

    def view_at(self, offset: int, length: int) -> memoryview:
        """Up to `length` plain bytes from `offset` (fewer at the end), decrypted in place, no copy."""
        end = min(self.size, offset + length)
        if offset >= end:
            return memoryview(b"")
        first, skip = divmod(offset, CHUNK)
        last = (end - 1) // CHUNK
        if first == last:
            return memoryview(self._chunk(first))[skip:skip + end - offset]
        step = CHUNK + TAG
        self._f.seek(len(self._header) + first * step)
        sealed = memoryview(self._f.read((last - first + 1) * step))
        plain = bytearray(min(self.size, (last + 1) * CHUNK) - first * CHUNK)
        out = memoryview(plain)
        for k, index in enumerate(range(first, last + 1)):
            data = sealed[k * step:(k + 1) * step]
            if len(data) < TAG:
                raise SealError(f"sealed file damaged (chunk {index} is short)")
            target = out[k * CHUNK:k * CHUNK + len(data) - TAG]
            if len(target) != len(data) - TAG:
                raise SealError(f"sealed file damaged (chunk {index} is too long)")
            final = self._final and index == self._count - 1
            try:
                self._aead.decrypt_into(_nonce(self._prefix, index), data, _aad(self._header, index, final), target)
            except InvalidTag:
                raise SealError(f"sealed file damaged or altered (chunk {index})") from None
        return out[skip:skip + end - offset]

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to `length` plain bytes from `offset` (fewer at the end)."""
        return bytes(self.view_at(offset, length))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Like a file's read(), without RawIOBase's intermediate buffer."""
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        data = self.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def read_view(self, size: int) -> memoryview:
        """read(), as a view of the decrypted buffer (no copy)."""
        data = self.view_at(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read_at(self._pos, len(buffer))
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            super().close()


def is_sealed(path: Path) -> bool:
    """Whether a file starts with the sealed header (blocking)."""
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def open_file(path: Path, keyring: Keyring | None, *, tolerate_cut: bool = False) -> BinaryIO:
    """Open a stored file for reading, sealed or plain (blocking); the result has read/seek/tell.

    SealError for a sealed file when no keyring is given.
    """
    f = path.open("rb")
    try:
        if _read_header(f) is None:
            f.seek(0)
            return f
        if keyring is None:
            raise SealError(f"{path.name} is encrypted but no key file is configured")
        return SealedReader(f, keyring, tolerate_cut=tolerate_cut)  # type: ignore[return-value]
    except BaseException:
        f.close()
        raise


def plain_size(f: BinaryIO) -> int:
    """The plain length of a file opened with open_file()."""
    if isinstance(f, SealedReader):
        return f.size
    return os.fstat(f.fileno()).st_size


def seal_file(source: Path, target: Path, keyring: Keyring) -> None:
    """Write `source` (plain or sealed) sealed with the current key to `target`, fsynced (blocking)."""
    with open_file(source, keyring) as src, target.open("wb") as dst:
        writer = SealedWriter(dst, keyring)
        shutil.copyfileobj(src, writer, CHUNK * 4)
        writer.finish()
        os.fsync(dst.fileno())

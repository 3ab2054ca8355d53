"""Encryption at rest: files written as AES-256-GCM chunks, read back in any order (docs/encryption.md).

A top-level package of its own, depending only on `cryptography`, so that both
`clinic/` (documents, whiteboard images) and `recorder/` (track files) can use it
without `recorder/` importing `clinic/`.
"""

from .errors import SealError
from .keyring import Keyring, generate_key
from .stream import CHUNK, SealedReader, SealedWriter, is_sealed, open_file, seal_file

__all__ = [
    "CHUNK",
    "Keyring",
    "SealError",
    "SealedReader",
    "SealedWriter",
    "generate_key",
    "is_sealed",
    "open_file",
    "seal_file",
]

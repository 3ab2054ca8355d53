"""The document store: files kept with a consultation, bytes on disk, one row each (sync parts).

Layout: `<documents dir>/<consultation_id>/<document_id>`.  A file being written
is `.<document_id>.part` in the same directory; it is fsynced, then renamed,
then its row is inserted, so a row always points at a complete file.  With a key
ring the bytes on disk are sealed (sealing/: AES-256-GCM chunks); size and sha256
are always those of the plain file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import hashlib
import logging
import os
import pathlib
import threading
import time
import uuid
from typing import Final, cast

from sealing import Keyring, SealedWriter, is_sealed, open_file

from . import timestamps
from .database import Database, Row, transaction
from .errors import ActClosed, NotFound
from .filetypes import HEAD_BYTES, sniff_media_type
from .models import DOCUMENT_AUTHORS, DOCUMENT_SOURCES, ConsultationState, Document, DocumentAuthor, DocumentSource

logger = logging.getLogger(__name__)

PART_SUFFIX: Final = ".part"
#: An upload's temporary file untouched this long is a crash's leftover (each write touches it).
STALE_PART: Final = datetime.timedelta(hours=1)
_READ_BYTES: Final = 1 << 20


def new_document_id() -> str:
    """Return a fresh document id (also its file name, so never from the user)."""
    return uuid.uuid4().hex


def check_kind(source: str, added_by: str) -> tuple[DocumentSource, DocumentAuthor]:
    """Refuse an unknown source or author with ValueError."""
    if source not in DOCUMENT_SOURCES:
        raise ValueError(f"source must be one of {DOCUMENT_SOURCES}, got {source!r}")
    if added_by not in DOCUMENT_AUTHORS:
        raise ValueError(f"added_by must be one of {DOCUMENT_AUTHORS}, got {added_by!r}")
    return cast(DocumentSource, source), cast(DocumentAuthor, added_by)


def _fsync_dir(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _document(row: Row) -> Document:
    return Document(**{f.name: row[f.name] for f in dataclasses.fields(Document)})


class _FdSink:
    """A raw file descriptor as the binary sink a SealedWriter writes to (PartFile closes the fd)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class PartFile:
    """A document being written: a private temporary file next to its final name.

    Thread-safe: write() may run in one thread while discard() runs in another
    (a cancelled upload); the lock makes discard wait for the write in flight.
    """

    def __init__(self, directory: pathlib.Path, document_id: str, keyring: Keyring | None = None) -> None:
        """Name the file; nothing touches the disk before open(); sealed when a key ring is given."""
        self.directory = directory
        self.keyring = keyring
        self._sealer: SealedWriter | None = None
        self.temp = directory / f".{document_id}{PART_SUFFIX}"
        self.final = directory / document_id
        self.size = 0
        self._hash = hashlib.sha256()
        self._lock = threading.Lock()
        self._fd = -1
        self._discarded = False

    def open(self) -> None:
        """Create the folder if needed and a new, empty temporary file in it."""
        with self._lock:
            # a cancelled upload may have been discarded before this thread got to run
            if self._discarded:
                raise OSError(errno.ECANCELED, "document was discarded")
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            if self.keyring is not None:
                self._sealer = SealedWriter(_FdSink(self._fd), self.keyring)  # type: ignore[arg-type]

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far."""
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        """Append `data` (and hash it)."""
        with self._lock:
            if self._fd < 0:
                raise OSError(errno.EBADF, "document file already closed")
            self._hash.update(data)
            if self._sealer is not None:
                self._sealer.write(data)
            else:
                _FdSink(self._fd).write(data)
            self.size += len(data)

    def finish(self) -> None:
        """Flush the bytes to disk and close the file (the rename comes later, see publish())."""
        with self._lock:
            if self._fd < 0:
                raise OSError(errno.EBADF, "document file already closed")
            fd, self._fd = self._fd, -1
            try:
                if self._sealer is not None:
                    self._sealer.finish()
                os.fsync(fd)
            finally:
                os.close(fd)

    def publish(self) -> None:
        """Give the finished file its final name, durably."""
        os.replace(self.temp, self.final)
        _fsync_dir(self.directory)

    def discard(self) -> None:
        """Close and delete whatever was written, under either name; safe to call twice."""
        with self._lock:
            self._discarded = True
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                os.close(fd)
            self.temp.unlink(missing_ok=True)
            self.final.unlink(missing_ok=True)


@dataclasses.dataclass(frozen=True, slots=True)
class FileFacts:
    """What add_document_file() learns from a complete file before adopting it."""

    media_type: str
    size: int
    sha256: str


def examine_file(path: pathlib.Path, keyring: Keyring | None = None) -> FileFacts:
    """Sniff, measure and hash a complete file (its plain bytes if sealed), flushing it to disk (blocking)."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with path.open("rb") as raw:
        os.fsync(raw.fileno())
    with open_file(path, keyring) as f:
        while chunk := f.read(_READ_BYTES):
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            digest.update(chunk)
            size += len(chunk)
    return FileFacts(sniff_media_type(head, complete=size <= HEAD_BYTES), size, digest.hexdigest())


def copy_into(path: pathlib.Path, part: PartFile) -> None:
    """Copy a file's plain bytes into `part` (sealing them if it has a key ring) and finish it (blocking)."""
    part.open()
    with open_file(path, part.keyring) as f:
        while chunk := f.read(_READ_BYTES):
            part.write(chunk)
    part.finish()


def can_adopt(path: pathlib.Path, directory: pathlib.Path, keyring: Keyring | None) -> bool:
    """Whether `path` may simply be moved in: same filesystem, and already sealed when it must be (blocking)."""
    return same_filesystem(path, directory) and (keyring is None or is_sealed(path))


class DocumentBook:
    """Rows of the `document` table and the files they point at.

    Blocking: every method runs SQL or file-system calls, so call it from the worker thread.
    """

    def __init__(self, conn: Database, directory: pathlib.Path, keyring: Keyring | None = None) -> None:
        """Work on `conn`, with files under `directory`, sealed with `keyring` when given."""
        self._conn = conn
        self.directory = directory
        self.keyring = keyring

    def sweep(self, older_than: datetime.timedelta = STALE_PART) -> int:
        """Delete temporary files left by a crash mid-upload; return how many.

        Only files untouched for `older_than`: with a folder shared by several nodes,
        a younger one may be another node's upload in progress.
        """
        removed = 0
        if self.directory.is_dir():
            before = time.time() - older_than.total_seconds()
            for part in self.directory.glob(f"*/.*{PART_SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):  # finished or swept by another node
                    if part.stat().st_mtime < before:
                        part.unlink()
                        removed += 1
        if removed:
            logger.warning("Removed %d unfinished document file(s) left by a previous run", removed)
        return removed

    def path(self, document: Document) -> pathlib.Path:
        """Where the bytes of `document` live."""
        return self.directory / document.consultation_id / document.id

    def consultation_dir(self, consultation_id: str) -> pathlib.Path:
        """The folder of a consultation's documents; NotFound if the consultation is unknown."""
        self.patient_of(consultation_id)
        return self.directory / consultation_id

    def patient_of(self, consultation_id: str, *, refuse_closed: bool = False) -> str:
        """Return the patient id of a consultation; NotFound if unknown, ActClosed if asked and closed."""
        row = self._conn.execute(
            "SELECT patient_id, state FROM consultation WHERE id = ?", (consultation_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no consultation {consultation_id!r}")
        if refuse_closed and row["state"] == ConsultationState.CLOSED.value:
            raise ActClosed("the act is closed: no more documents can be added")
        patient_id: str = row["patient_id"]
        return patient_id

    def insert(self, document: Document, *, refuse_closed: bool = False) -> None:
        """Insert the row of a document whose file is already in place (ActClosed: if asked and closed)."""
        with transaction(self._conn) as conn:
            if refuse_closed:
                self.patient_of(document.consultation_id, refuse_closed=True)  # under the write lock
            names = [f.name for f in dataclasses.fields(Document)]
            conn.execute(
                f"INSERT INTO document ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                tuple(getattr(document, name) for name in names),
            )

    def publish(self, part: PartFile, document: Document, *, refuse_closed: bool = False) -> None:
        """Rename a finished file to its final name, then insert its row; on failure nothing stays."""
        try:
            part.publish()
            self.insert(document, refuse_closed=refuse_closed)
        except BaseException:
            part.discard()
            raise

    def adopt(self, source: pathlib.Path, document: Document) -> None:
        """Move a complete file on the same filesystem in place, then insert its row.

        On failure the file goes back where it was.
        """
        final = self.path(document)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, final)
        try:
            _fsync_dir(final.parent)
            self.insert(document)
        except BaseException:
            os.replace(final, source)
            raise

    def undo(self, document_id: str, part: PartFile) -> None:
        """Forget a document whose storing failed or was cancelled: no row, no file."""
        with transaction(self._conn) as conn:
            conn.execute("DELETE FROM document WHERE id = ?", (document_id,))
        part.discard()

    def get(self, document_id: str) -> Document:
        """Return a document that was not removed; NotFound otherwise."""
        row = self._conn.execute(
            "SELECT * FROM document WHERE id = ? AND removed_at IS NULL", (document_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no document {document_id!r}")
        return _document(row)

    def select(self, consultation_id: str | None, patient_id: str | None) -> list[Document]:
        """Documents not removed, oldest first, of a consultation and/or a patient."""
        if consultation_id is None and patient_id is None:
            raise ValueError("list_documents needs a consultation_id or a patient_id")
        where = ["removed_at IS NULL"]
        args: list[str] = []
        if consultation_id is not None:
            where.append("consultation_id = ?")
            args.append(consultation_id)
        if patient_id is not None:
            where.append("patient_id = ?")
            args.append(patient_id)
        found = self._conn.execute(
            f"SELECT * FROM document WHERE {' AND '.join(where)} ORDER BY created_at, id", args
        ).fetchall()
        return [_document(row) for row in found]

    def remove(self, document_id: str) -> pathlib.Path | None:
        """Mark a document removed; return its file to delete (None if it was removed already)."""
        with transaction(self._conn) as conn:
            row = conn.execute("SELECT * FROM document WHERE id = ?", (document_id,)).fetchone()
            if row is None:
                raise NotFound(f"no document {document_id!r}")
            if row["removed_at"] is not None:
                return None
            conn.execute(
                "UPDATE document SET removed_at = ? WHERE id = ?",
                (timestamps.to_text(timestamps.utc_now()), document_id),
            )
        logger.info("Document(%s) removed", document_id)
        return self.path(_document(row))

    def older_than(self, limit: str) -> list[Document]:
        """Documents not removed whose created_at is before `limit` (timestamp text), oldest first."""
        rows = self._conn.execute(
            "SELECT * FROM document WHERE removed_at IS NULL AND created_at < ? ORDER BY created_at", (limit,)
        ).fetchall()
        return [_document(row) for row in rows]

    def practitioner_can_read(self, practitioner_id: str, document_id: str) -> bool:
        """True iff the document exists (not removed) and the practitioner may see its patient."""
        row = self._conn.execute(
            "SELECT 1 FROM document JOIN access_grant USING (patient_id)"
            " WHERE document.id = ? AND document.removed_at IS NULL"
            " AND access_grant.practitioner_id = ?",
            (document_id, practitioner_id),
        ).fetchone()
        return row is not None


def same_filesystem(path: pathlib.Path, directory: pathlib.Path) -> bool:
    """Tell whether os.replace() can move `path` into `directory` (blocking)."""
    directory.mkdir(parents=True, exist_ok=True)
    return path.stat().st_dev == directory.stat().st_dev


def delete_file(path: pathlib.Path) -> None:
    """Delete a document's file if it is still there (blocking)."""
    path.unlink(missing_ok=True)


__all__ = [
    "DocumentBook",
    "FileFacts",
    "can_adopt",
    "PartFile",
    "check_kind",
    "copy_into",
    "delete_file",
    "examine_file",
    "new_document_id",
    "same_filesystem",
]

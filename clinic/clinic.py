"""The async facade of the clinic: every blocking call runs in one worker thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import functools
import logging
import pathlib
from collections.abc import AsyncIterable, Callable, Collection
from typing import ParamSpec, TypeVar

from sealing import Keyring

from . import demo, timestamps, tokens
from .agenda import Agenda
from .board import Background, Board, BoardChanges, BoardLimits
from .boardstore import BoardStore
from .chat import ChatBook, ChatMessage
from .consent import ConsentEntry, ConsentLedger
from .database import Database, is_url, probe_write
from .documents import (
    DocumentBook,
    PartFile,
    can_adopt,
    check_kind,
    copy_into,
    delete_file,
    examine_file,
    new_document_id,
)
from .engines import open_database
from .errors import ClinicError, DocumentTooLarge, DocumentTypeRefused, InvitationNotFound
from .filetypes import HEAD_BYTES, accepted, safe_name, sniff_media_type
from .migrations import migrate
from .models import (
    Consultation,
    ConsultationState,
    DemoPractice,
    Document,
    DocumentAuthor,
    DocumentSource,
    Invitation,
    NetTest,
    Patient,
    Practitioner,
    Readiness,
    Role,
    Stage,
)
from .passwords import Passwords
from .practice import Practice
from .quotas import UploadLedger, UploadQuota, stored_bytes
from .readiness import ReadinessBook
from .record_export import delete_folders, erase, read_contents, retention_until, write_archive
from .registry import Registry

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

# uploads reach the disk in writes of about this size (fewer thread hops than one per chunk)
_WRITE_BYTES = 1 << 20


def _decide_type(head: bytes, complete: bool, allowed_types: Collection[str] | None) -> str:
    media_type = sniff_media_type(head, complete=complete)
    if allowed_types is not None and not accepted(media_type, allowed_types):
        raise DocumentTypeRefused(media_type)
    return media_type


class _Backend:
    """The blocking half, built and used only inside the worker thread."""

    def __init__(
        self,
        database: str | pathlib.Path,
        invitation_lifetime: datetime.timedelta,
        documents_dir: pathlib.Path,
        keyring: Keyring | None = None,
    ) -> None:
        self.conn: Database = open_database(database)
        try:
            migrate(self.conn)
            self.registry = Registry(self.conn, Passwords())
            self.agenda = Agenda(self.conn, self.registry, invitation_lifetime=invitation_lifetime)
            self.readiness = ReadinessBook(self.conn)
            self.documents = DocumentBook(self.conn, documents_dir, keyring)
            self.documents.sweep()
            self.chat = ChatBook(self.conn)
            self.boards = BoardStore(self.conn)
            self.consents = ConsentLedger(self.conn)
        except BaseException:
            self.conn.close()
            raise


def _discard(opening: concurrent.futures.Future[_Backend]) -> None:
    """Close the connection of a backend whose opener gave up waiting for it."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().conn.close()


class Clinic:
    """Practitioners, patients, consultations and invitations, behind an async API.

    Create with `await Clinic.open(...)`, finish with `await clinic.close()`.
    Database and argon2 work runs in a single dedicated thread that owns the connection
    (SQLite) or borrows from the pool (PostgreSQL), so the event loop never blocks and a
    connection is never shared across threads.
    """

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor, backend: _Backend) -> None:
        """Wrap an opened backend; use Clinic.open() rather than calling this."""
        self._executor = executor
        self._backend = backend
        self._closed = False
        self._uploads = UploadLedger()

    @classmethod
    async def open(
        cls,
        database: pathlib.Path | str,
        *,
        invitation_lifetime: datetime.timedelta,
        documents_dir: pathlib.Path | None = None,
        keyring: Keyring | None = None,
    ) -> Clinic:
        """Open (or create) the database and bring its schema up to date.

        `database` is the path of a SQLite file or a "postgresql://…" URL.
        Documents live under `documents_dir`, by default the "documents" folder next
        to the SQLite file (the storage data dir); with PostgreSQL it must be given.
        Files are sealed with `keyring` when given. DatabaseUnavailable when PostgreSQL cannot be reached.
        """
        if invitation_lifetime < datetime.timedelta(0):
            raise ValueError(f"invitation_lifetime must not be negative, got {invitation_lifetime}")
        if documents_dir is None:
            if is_url(database):
                raise ValueError("documents_dir is needed with a PostgreSQL database")
            documents_dir = pathlib.Path(database).parent / "documents"
        target = database if is_url(database) else pathlib.Path(database)
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="clinic-db"
        )
        opening = executor.submit(_Backend, target, invitation_lifetime, pathlib.Path(documents_dir), keyring)
        try:
            backend = await asyncio.wrap_future(opening)
        except BaseException:
            # if cancelled mid-open, the worker closes what it built, then exits
            executor.submit(_discard, opening)
            executor.shutdown(wait=False)
            raise
        logger.info("Clinic opened (%s)", backend.conn.dialect)
        return cls(executor, backend)

    async def close(self) -> None:
        """Close the database and stop the worker thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            # queued after every pending call, so those finish first
            await loop.run_in_executor(self._executor, self._backend.conn.close)
        finally:
            # joining the idle worker is quick, but still not done on the loop itself
            await asyncio.to_thread(self._executor.shutdown, wait=True)
        logger.info("Clinic closed")

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run `fn` in the worker thread and wait for its result."""
        if self._closed:
            raise ClinicError("clinic is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def check_writable(self) -> None:
        """Raise the engine's error when the database cannot take a write (read-only, disk full, locked)."""
        await self._run(probe_write, self._backend.conn)

    # practitioners

    async def add_practitioner(self, email: str, password: str, display_name: str) -> Practitioner:
        """Create a practitioner account; AlreadyExists if the email is taken."""
        return await self._run(
            self._backend.registry.add_practitioner, email, password, display_name
        )

    async def verify_practitioner(self, email: str, password: str) -> Practitioner | None:
        """Return the practitioner if the password matches, else None."""
        return await self._run(self._backend.registry.verify_practitioner, email, password)

    async def set_practitioner_password(self, practitioner_id: str, password: str) -> None:
        """Replace a practitioner's password; NotFound if the id is unknown."""
        await self._run(self._backend.registry.set_practitioner_password, practitioner_id, password)

    async def find_practitioner(self, email: str) -> Practitioner | None:
        """Return the practitioner with this email, or None."""
        return await self._run(self._backend.registry.find_practitioner, email)

    async def get_practitioner(self, practitioner_id: str) -> Practitioner:
        """Return the practitioner with this id; NotFound otherwise."""
        return await self._run(self._backend.registry.get_practitioner, practitioner_id)

    # patients and access

    async def add_patient(self, name: str, email: str, date_of_birth: datetime.date) -> Patient:
        """Create a patient record."""
        return await self._run(self._backend.registry.add_patient, name, email, date_of_birth)

    async def get_patient(self, patient_id: str) -> Patient:
        """Return the patient with this id; NotFound otherwise."""
        return await self._run(self._backend.registry.get_patient, patient_id)

    async def grant_access(self, practitioner_id: str, patient_id: str) -> None:
        """Let a practitioner see a patient (idempotent); NotFound if either is unknown."""
        await self._run(self._backend.registry.grant_access, practitioner_id, patient_id)

    async def has_access(self, practitioner_id: str, patient_id: str) -> bool:
        """Tell whether a practitioner may see a patient."""
        return await self._run(self._backend.registry.has_access, practitioner_id, patient_id)

    @functools.cached_property
    def practice(self) -> Practice:
        """Accounts, records, patient links, mail queue and audit (clinic/practice.py)."""
        return Practice(self._run, self._backend.conn, self._backend.registry, self._backend.agenda)

    # consultations and invitations

    async def schedule_consultation(
        self, patient_id: str, practitioner_id: str, scheduled_at: datetime.datetime
    ) -> tuple[Consultation, dict[Role, str]]:
        """Create a consultation and one invitation per side, atomically.

        Returns the clear tokens, which are not stored and cannot be read back later.
        NotFound if the practitioner has no access to the patient.
        """
        return await self._run(
            self._backend.agenda.schedule_consultation, patient_id, practitioner_id, scheduled_at
        )

    async def resolve_invitation(self, token: str) -> Invitation:
        """Return the usable invitation behind `token`.

        Raises InvitationNotFound, InvitationExpired or InvitationRevoked.
        """
        # malformed input is refused here, without a trip to the database
        if not tokens.is_well_formed(token):
            raise InvitationNotFound("no invitation for this token")
        return await self._run(self._backend.agenda.resolve_invitation, token)

    async def revoke_invitation(self, invitation_id: str) -> None:
        """Revoke an invitation (idempotent); InvitationNotFound if the id is unknown."""
        await self._run(self._backend.agenda.revoke_invitation, invitation_id)

    async def get_consultation(self, consultation_id: str) -> Consultation:
        """Return the consultation with this id; NotFound otherwise."""
        return await self._run(self._backend.agenda.get_consultation, consultation_id)

    async def update_consultation(
        self,
        consultation_id: str,
        *,
        state: ConsultationState,
        practitioner_stage: Stage,
        patient_stage: Stage,
    ) -> Consultation:
        """Set state and both stages in one transaction; InvalidTransition if not allowed."""
        return await self._run(
            self._backend.agenda.update_consultation,
            consultation_id,
            state=state,
            practitioner_stage=practitioner_stage,
            patient_stage=patient_stage,
        )

    # readiness (waiting room: devices and connection test)

    async def save_readiness(
        self, consultation_id: str, role: Role, *, mic: str, camera: str, test: NetTest | None
    ) -> Readiness:
        """Store a side's device state and, when given, its latest connection test.

        `test=None` keeps the test stored before.  ValueError on a bad value,
        NotFound if the consultation is unknown.
        """
        return await self._run(
            self._backend.readiness.save, consultation_id, role, mic=mic, camera=camera, test=test
        )

    async def get_readiness(self, consultation_id: str) -> dict[Role, Readiness]:
        """Each side's latest readiness, for the sides that reported one."""
        return await self._run(self._backend.readiness.get, consultation_id)

    # whiteboard (clinic/board.py)

    async def load_board(self, consultation_id: str, limits: BoardLimits) -> Board:
        """The consultation's whiteboard as last saved (an empty, closed board if never used)."""
        return await self._run(self._backend.boards.load, consultation_id, limits)

    async def save_board(self, consultation_id: str, board: Board, changes: BoardChanges) -> None:
        """Persist what one board operation changed (call before the board changes again)."""
        await self._run(self._backend.boards.save, consultation_id, board, changes)

    async def add_board_background(self, consultation_id: str, background: Background) -> None:
        """Record a background document whose pages are rendered on disk; NotFound if no such consultation."""
        await self._run(self._backend.boards.add_background, consultation_id, background)

    async def count_board_backgrounds(self, consultation_id: str) -> int:
        """How many background documents this consultation's board has had."""
        return await self._run(self._backend.boards.count_backgrounds, consultation_id)

    async def get_board_background(self, consultation_id: str, background_id: str) -> Background:
        """A background of this consultation's board; NotFound otherwise."""
        return await self._run(self._backend.boards.get_background, consultation_id, background_id)

    # consent ledger (clinic/consent.py)

    async def record_consent(self, consultation_id: str, actor: str, subject: str, decision: str,
                             notice_version: str, recording_id: str | None = None) -> ConsentEntry:
        """Append a consent decision (audited); ValueError on a bad value or an outdated notice version."""
        return await self._run(self._backend.consents.record, consultation_id, actor, subject, decision,
                               notice_version, recording_id)

    async def latest_consent(self, consultation_id: str, subject: str = "teleconsultation") -> ConsentEntry | None:
        """The decision that counts now, or None when the patient was not asked yet."""
        return await self._run(self._backend.consents.latest, consultation_id, subject)

    async def consents_of_patient(self, patient_id: str) -> list[ConsentEntry]:
        """Every consent decision of a patient's consultations, oldest first."""
        return await self._run(self._backend.consents.of_patient, patient_id)

    # the patient's rights (clinic/record_export.py)

    async def export_record(self, practitioner_id: str, patient_id: str, folder: pathlib.Path) -> pathlib.Path:
        """The record as a ZIP in a new temporary file under `folder` (the caller deletes it); audited.

        NotFound when the practitioner has no access.
        """
        practice = self.practice
        patient = await practice.patient(practitioner_id, patient_id)
        consultations = await practice.consultations(practitioner_id, patient_id)
        documents = await self.list_documents(patient_id=patient_id)
        contents = await self._run(read_contents, self._backend.conn, patient, consultations, documents)
        book = self._backend.documents
        path = await asyncio.to_thread(write_archive, contents, book.directory, book.keyring, folder)
        await practice.audit("practitioner", practitioner_id, "record.export", patient_id=patient_id)
        logger.info("Patient(%s) record exported by Practitioner(%s)", patient_id, practitioner_id)
        return path

    async def retention_until(self, patient_id: str, retention_days: int) -> datetime.date:
        """The first day a record may be erased; NotFound for an unknown patient."""
        return await self._run(retention_until, self._backend.conn, patient_id, retention_days)

    async def erase_patient(self, patient_id: str, retention_days: int, data_dir: pathlib.Path) -> int:
        """Erase a record and its files (ErasureRefused before the retention date); returns the consultations erased."""
        consultations = await self._run(erase, self._backend.conn, patient_id, retention_days)
        await asyncio.to_thread(delete_folders, pathlib.Path(data_dir), consultations)
        return len(consultations)

    # demo

    async def ensure_demo(self, base_url: str, data_dir: pathlib.Path) -> DemoPractice:
        """Create or reuse the demo practice and schedule a new consultation starting now.

        The demo password lives in data_dir/demo-credentials.json (mode 0o600).
        """
        return await self._run(
            demo.ensure_demo,
            self._backend.registry,
            self._backend.agenda,
            base_url,
            pathlib.Path(data_dir),
        )

    # documents (clinic/documents.py): files kept with a consultation

    async def store_document(
        self,
        consultation_id: str,
        source: str,
        name: str,
        added_by: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        allowed_types: Collection[str] | None = None,
        quota: UploadQuota | None = None,
        refuse_closed: bool = False,
    ) -> Document:
        """Stream `chunks` to a new document of the consultation and return it.

        The type is sniffed from the bytes; `name` is only sanitised and shown.
        Raises DocumentTooLarge past `max_bytes`, DocumentTypeRefused when the sniffed
        type is not in `allowed_types` (None: any), QuotaExceeded past `quota` (this
        upload's side, or the consultation, counting the uploads in flight), ActClosed
        when `refuse_closed` and the act is (or gets) closed, NotFound for an unknown
        consultation.  After any failure or cancellation no file and no row remain.
        """
        source_, author = check_kind(source, added_by)
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        book = self._backend.documents
        patient_id = await self._run(book.patient_of, consultation_id, refuse_closed=refuse_closed)
        if quota is None:
            return await self._store(consultation_id, patient_id, source_, name, author, chunks, max_bytes,
                                     allowed_types, None, refuse_closed)
        kept, received = False, 0

        def count(size: int) -> None:
            nonlocal received
            self._uploads.add(consultation_id, author, size, quota)
            received += size

        self._uploads.begin(consultation_id)
        try:
            self._uploads.load(consultation_id, await self._run(stored_bytes, self._backend.conn, consultation_id))
            document = await self._store(consultation_id, patient_id, source_, name, author, chunks, max_bytes,
                                         allowed_types, count, refuse_closed)
            kept = True
            return document
        finally:
            self._uploads.end(consultation_id, author, received, kept)

    async def _store(
        self, consultation_id: str, patient_id: str, source_: DocumentSource, name: str, author: DocumentAuthor,
        chunks: AsyncIterable[bytes], max_bytes: int, allowed_types: Collection[str] | None,
        count: Callable[[int], None] | None, refuse_closed: bool,
    ) -> Document:
        book = self._backend.documents
        document_id = new_document_id()
        part = PartFile(book.directory / consultation_id, document_id, book.keyring)
        try:
            await asyncio.to_thread(part.open)
            head = b""
            media_type: str | None = None
            pending = bytearray()
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise DocumentTooLarge(max_bytes)
                if count is not None:
                    count(len(chunk))  # QuotaExceeded past a quota
                if media_type is None:
                    head += bytes(chunk[: HEAD_BYTES - len(head)])
                    if len(head) >= HEAD_BYTES:
                        # refuse a wrong type before receiving the rest
                        media_type = _decide_type(head, False, allowed_types)
                pending += chunk
                if len(pending) >= _WRITE_BYTES:
                    data, pending = bytes(pending), bytearray()
                    await asyncio.to_thread(part.write, data)
            if media_type is None:
                media_type = _decide_type(head, True, allowed_types)
            if pending:
                await asyncio.to_thread(part.write, bytes(pending))
            await asyncio.to_thread(part.finish)
            document = Document(
                id=document_id,
                consultation_id=consultation_id,
                patient_id=patient_id,
                source=source_,
                name=safe_name(name),
                media_type=media_type,
                size=part.size,
                sha256=part.sha256,
                added_by=author,
                created_at=timestamps.to_text(timestamps.utc_now()),
                removed_at=None,
            )
            await self._run(book.publish, part, document, refuse_closed=refuse_closed)
        except BaseException:
            await self._forget(document_id, part)
            raise
        logger.info(
            "Document(%s) stored for Consultation(%s): %s, %d bytes",
            document.id, consultation_id, document.media_type, document.size,
        )
        return document

    async def _forget(self, document_id: str, part: PartFile) -> None:
        """Undo a failed or cancelled store_document(): no row, no file."""
        try:
            # queued in the worker after any publish() in flight, so it undoes that too;
            # submitted without awaiting first, so it happens even if we are cancelled again
            undo = self._executor.submit(self._backend.documents.undo, document_id, part)
        except RuntimeError:  # worker already shut down: nothing can have been published
            part.discard()
            return
        try:
            await asyncio.shield(asyncio.wrap_future(undo))
        except Exception:
            logger.exception("Document(%s) could not be cleaned up", document_id)

    async def add_document_file(
        self, consultation_id: str, source: str, name: str, added_by: str, path: pathlib.Path
    ) -> Document:
        """Adopt a complete file (e.g. a recording) as a document of the consultation.

        The file is moved in (os.replace when on the same filesystem, else copied and
        then deleted); its type is sniffed from its bytes.  NotFound for an unknown
        consultation; on failure the file stays where it was.
        """
        source_, author = check_kind(source, added_by)
        path = pathlib.Path(path)
        book = self._backend.documents
        patient_id = await self._run(book.patient_of, consultation_id)
        facts = await asyncio.to_thread(examine_file, path, book.keyring)
        document = Document(
            id=new_document_id(),
            consultation_id=consultation_id,
            patient_id=patient_id,
            source=source_,
            name=safe_name(name),
            media_type=facts.media_type,
            size=facts.size,
            sha256=facts.sha256,
            added_by=author,
            created_at=timestamps.to_text(timestamps.utc_now()),
            removed_at=None,
        )
        directory = book.directory / consultation_id
        if await asyncio.to_thread(can_adopt, path, directory, book.keyring):
            await self._run(book.adopt, path, document)
        else:
            part = PartFile(directory, document.id, book.keyring)
            try:
                await asyncio.to_thread(copy_into, path, part)
                await self._run(book.publish, part, document)
            except BaseException:
                await self._forget(document.id, part)
                raise
            await asyncio.to_thread(delete_file, path)
        logger.info(
            "Document(%s) added to Consultation(%s) from a file: %s, %d bytes",
            document.id, consultation_id, document.media_type, document.size,
        )
        return document

    async def get_document(self, document_id: str) -> Document:
        """Return a document; NotFound if unknown or removed."""
        return await self._run(self._backend.documents.get, document_id)

    async def list_documents(
        self, *, consultation_id: str | None = None, patient_id: str | None = None
    ) -> list[Document]:
        """Documents not removed, oldest first, of a consultation and/or a patient (one is needed)."""
        return await self._run(self._backend.documents.select, consultation_id, patient_id)

    async def remove_document(self, document_id: str) -> None:
        """Mark a document removed and delete its file; NotFound if unknown (twice is fine)."""
        path = await self._run(self._backend.documents.remove, document_id)
        if path is not None:
            await asyncio.to_thread(delete_file, path)

    @property
    def keyring(self) -> Keyring | None:
        """The keys documents are sealed with (None: stored in clear)."""
        return self._backend.documents.keyring

    async def expire_documents(self, retention_days: int, now: datetime.datetime | None = None) -> int:
        """Remove every document (any source) added more than `retention_days` ago, audited; returns how many."""
        limit = (now or timestamps.utc_now()) - datetime.timedelta(days=retention_days)
        expired = await self._run(self._backend.documents.older_than, timestamps.to_text(limit))
        for document in expired:
            await self.remove_document(document.id)
            await self.practice.audit("system", None, "document.remove", patient_id=document.patient_id,
                                      consultation_id=document.consultation_id, document_id=document.id)
        if expired:
            logger.info("%d document(s) older than %d days removed", len(expired), retention_days)
        return len(expired)

    async def document_path(self, document: Document) -> pathlib.Path:
        """Where the bytes of `document` live (no I/O)."""
        return self._backend.documents.path(document)

    async def practitioner_can_read_document(self, practitioner_id: str, document_id: str) -> bool:
        """True iff the document exists, is not removed, and its patient is in the practitioner's access."""
        return await self._run(
            self._backend.documents.practitioner_can_read, practitioner_id, document_id
        )

    # chat (clinic/chat.py)

    async def add_chat_message(
        self,
        consultation_id: str,
        kind: str,
        author: str,
        *,
        text: str | None = None,
        document_id: str | None = None,
        key: str | None = None,
        params: dict[str, str] | None = None,
    ) -> ChatMessage:
        """Store a chat message ("text", "file" or "system") and return it.

        ValueError if the fields do not fit the kind; NotFound for an unknown
        consultation, or a document of another consultation.
        """
        return await self._run(
            self._backend.chat.add, consultation_id, kind, author,
            text=text, document_id=document_id, key=key, params=params,
        )

    async def chat_history(self, consultation_id: str, *, limit: int) -> list[ChatMessage]:
        """The latest `limit` chat messages of a consultation, oldest first."""
        return await self._run(self._backend.chat.history, consultation_id, limit)

"""The document store against real SQLite and PostgreSQL databases and a real folder (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import os
import pathlib
import time
from collections.abc import AsyncIterator

import helpers.media_files as media_files
import pytest
from helpers.databases import TestDatabase

from clinic import (
    Clinic,
    Document,
    DocumentTooLarge,
    DocumentTypeRefused,
    NotFound,
    Patient,
    Practitioner,
)

UTC = datetime.UTC
LIFETIME = datetime.timedelta(hours=2)
WHEN = datetime.datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
MB = 1 << 20


def files_under(folder: pathlib.Path) -> list[pathlib.Path]:
    """Every file (not folder) below `folder`, hidden ones included."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def chunked(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


@pytest.fixture
def docs_dir(database: TestDatabase) -> pathlib.Path:
    return database.documents


@pytest.fixture
async def clinic(database: TestDatabase) -> AsyncIterator[Clinic]:
    opened = await database.open(LIFETIME)
    yield opened
    await opened.close()


@pytest.fixture
async def practice(clinic: Clinic) -> tuple[Practitioner, Patient, str, str]:
    """A practitioner with access to a patient who has two consultations."""
    practitioner = await clinic.add_practitioner("doc@example.org", "a long password", "Dr A")
    patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", datetime.date(1970, 5, 17))
    await clinic.grant_access(practitioner.id, patient.id)
    first, _ = await clinic.schedule_consultation(patient.id, practitioner.id, WHEN)
    second, _ = await clinic.schedule_consultation(patient.id, practitioner.id, WHEN)
    return practitioner, patient, first.id, second.id


async def test_store_round_trip(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    _, patient, consultation_id, _ = practice
    data = media_files.png(300, 200) * 1  # one real PNG
    data += os.urandom(3 * MB)  # trailing bytes: the type still comes from the head
    document = await clinic.store_document(
        consultation_id, "chat", "../../radio\x00.exe", "patient", chunked(data), max_bytes=10 * MB
    )
    assert document.media_type == "image/png"
    assert document.name == "radio.exe"
    assert document.size == len(data)
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    assert (document.consultation_id, document.patient_id) == (consultation_id, patient.id)
    assert (document.source, document.added_by, document.removed_at) == ("chat", "patient", None)
    datetime.datetime.fromisoformat(document.created_at)

    path = await clinic.document_path(document)
    assert path == docs_dir / consultation_id / document.id
    assert path.read_bytes() == data
    assert files_under(docs_dir) == [path]  # no temporary file left
    assert await clinic.get_document(document.id) == document
    assert await clinic.list_documents(consultation_id=consultation_id) == [document]
    assert database.rows("SELECT name, media_type, size FROM document") == [("radio.exe", "image/png", len(data))]
    assert "radio" not in repr(document)


async def test_executable_named_png_is_octet_stream(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str]
) -> None:
    document = await clinic.store_document(
        practice[2], "chat", "photo.png", "patient", chunked(media_files.elf()), max_bytes=MB
    )
    assert document.media_type == "application/octet-stream"
    assert document.name == "photo.png"


async def test_empty_and_exact_limit(clinic: Clinic, practice: tuple[Practitioner, Patient, str, str]) -> None:
    empty = await clinic.store_document(practice[2], "chat", "", "practitioner", chunked(b""), max_bytes=0)
    assert (empty.size, empty.name, empty.media_type) == (0, "document", "application/octet-stream")
    exact = await clinic.store_document(
        practice[2], "chat", "note.txt", "practitioner", chunked(b"x" * 1000, 7), max_bytes=1000
    )
    assert (exact.size, exact.media_type) == (1000, "text/plain")


async def assert_nothing_stored(clinic: Clinic, database: TestDatabase, docs_dir: pathlib.Path) -> None:
    assert files_under(docs_dir) == []
    assert database.rows("SELECT count(*) FROM document") == [(0,)]


async def test_too_large_leaves_nothing(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    received = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal received
        while True:
            received += 65536
            yield b"\0" * 65536

    with pytest.raises(DocumentTooLarge, match="limit of 3145728 bytes") as caught:
        await clinic.store_document(practice[2], "chat", "big.bin", "patient", endless(), max_bytes=3 * MB)
    assert caught.value.limit == 3 * MB
    # stopped reading right after the limit
    assert received <= 3 * MB + 65536
    await assert_nothing_stored(clinic, database, docs_dir)


async def test_refused_type_is_refused_at_the_head(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    sent = 0

    async def executable() -> AsyncIterator[bytes]:
        nonlocal sent
        data = media_files.elf(8 * MB)
        for start in range(0, len(data), 1000):
            sent += 1000
            yield data[start : start + 1000]

    with pytest.raises(DocumentTypeRefused) as caught:
        await clinic.store_document(
            practice[2], "chat", "x.png", "patient", executable(), max_bytes=100 * MB,
            allowed_types={"image/png", "application/pdf"},
        )
    assert caught.value.media_type == "application/octet-stream"
    assert sent < 10_000
    # a small file is judged when it ends
    with pytest.raises(DocumentTypeRefused):
        await clinic.store_document(
            practice[2], "chat", "x.txt", "patient", chunked(b"hello"), max_bytes=MB, allowed_types=["image/png"]
        )
    await assert_nothing_stored(clinic, database, docs_dir)
    accepted = await clinic.store_document(
        practice[2], "chat", "x.pdf", "patient", chunked(media_files.pdf()), max_bytes=MB,
        allowed_types={"image/png", "application/pdf"},
    )
    assert accepted.media_type == "application/pdf"


async def test_failing_source_leaves_nothing(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    async def cut() -> AsyncIterator[bytes]:
        yield b"a" * (2 * MB)  # past the write buffer, so bytes reached the disk
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        await clinic.store_document(practice[2], "chat", "a.txt", "patient", cut(), max_bytes=10 * MB)
    await assert_nothing_stored(clinic, database, docs_dir)


async def test_cancelled_upload_leaves_nothing(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    halfway = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"b" * (3 * MB)
        halfway.set()
        await asyncio.Event().wait()
        yield b""  # never reached

    task = asyncio.create_task(
        clinic.store_document(practice[2], "chat", "a.txt", "patient", stalls(), max_bytes=10 * MB)
    )
    await asyncio.wait_for(halfway.wait(), 10)
    assert any(p.name.endswith(".part") for p in files_under(docs_dir))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_nothing_stored(clinic, database, docs_dir)


async def test_cancelled_at_every_step_leaves_nothing_or_everything(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    data = b"c" * (2 * MB + 5)
    outcomes = set()
    # more and more event-loop turns before the cancel, until the store wins the race
    for ticks in range(0, 5000, 2):
        task = asyncio.create_task(
            clinic.store_document(practice[2], "chat", "a.txt", "patient", chunked(data, MB), max_bytes=10 * MB)
        )
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await clinic.get_consultation(practice[2])  # the worker is idle again
        outcomes.add(task.cancelled())
        if task.cancelled():
            await assert_nothing_stored(clinic, database, docs_dir)
        else:
            await clinic.remove_document(task.result().id)
            assert files_under(docs_dir) == []
            break
    # the loop reached both ends: cancelled early, and finished before the cancel
    assert outcomes == {True, False}


async def test_unknown_consultation_and_bad_arguments(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    with pytest.raises(NotFound):
        await clinic.store_document("nope", "chat", "a", "patient", chunked(b"a"), max_bytes=10)
    with pytest.raises(ValueError, match="source"):
        await clinic.store_document(practice[2], "email", "a", "patient", chunked(b"a"), max_bytes=10)
    with pytest.raises(ValueError, match="added_by"):
        await clinic.store_document(practice[2], "chat", "a", "nurse", chunked(b"a"), max_bytes=10)
    with pytest.raises(ValueError, match="max_bytes"):
        await clinic.store_document(practice[2], "chat", "a", "patient", chunked(b"a"), max_bytes=-1)
    with pytest.raises(ValueError, match="consultation_id or a patient_id"):
        await clinic.list_documents()
    await assert_nothing_stored(clinic, database, docs_dir)


async def test_add_document_file_moves_it_in(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], tmp_path: pathlib.Path, docs_dir: pathlib.Path
) -> None:
    recording = tmp_path / "data" / "recordings" / "call.webm"
    recording.parent.mkdir(parents=True)
    data = media_files.webm_vp8()
    recording.write_bytes(data)
    document = await clinic.add_document_file(practice[2], "recording", "Enregistrement.webm", "system", recording)
    assert not recording.exists()
    assert (document.media_type, document.size, document.source) == ("video/webm", len(data), "recording")
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    assert (await clinic.document_path(document)).read_bytes() == data
    assert files_under(docs_dir) == [await clinic.document_path(document)]

    with pytest.raises(FileNotFoundError):
        await clinic.add_document_file(practice[2], "recording", "x", "system", tmp_path / "missing.webm")
    stray = tmp_path / "stray.png"
    stray.write_bytes(media_files.png())
    with pytest.raises(NotFound):
        await clinic.add_document_file("nope", "whiteboard", "x", "system", stray)
    assert stray.exists()


async def test_list_by_consultation_and_patient_oldest_first(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str]
) -> None:
    _, patient, first, second = practice
    stored: list[Document] = []
    for consultation_id, name in ((first, "a.txt"), (second, "b.txt"), (first, "c.txt")):
        stored.append(
            await clinic.store_document(consultation_id, "chat", name, "patient", chunked(b"t"), max_bytes=10)
        )
    assert [d.name for d in await clinic.list_documents(consultation_id=first)] == ["a.txt", "c.txt"]
    assert await clinic.list_documents(patient_id=patient.id) == stored
    assert await clinic.list_documents(consultation_id=second, patient_id=patient.id) == [stored[1]]
    assert await clinic.list_documents(patient_id="someone else") == []


async def test_remove_document(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], database: TestDatabase, docs_dir: pathlib.Path
) -> None:
    practitioner = practice[0]
    document = await clinic.store_document(practice[2], "chat", "a.txt", "patient", chunked(b"t"), max_bytes=10)
    assert await clinic.practitioner_can_read_document(practitioner.id, document.id)
    await clinic.remove_document(document.id)
    await clinic.remove_document(document.id)  # twice is fine
    assert files_under(docs_dir) == []
    with pytest.raises(NotFound):
        await clinic.get_document(document.id)
    assert await clinic.list_documents(consultation_id=practice[2]) == []
    assert not await clinic.practitioner_can_read_document(practitioner.id, document.id)
    (removed_at,) = database.rows("SELECT removed_at FROM document")[0]
    assert isinstance(removed_at, str)
    with pytest.raises(NotFound):
        await clinic.remove_document("unknown")


async def test_practitioner_can_read_document(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str]
) -> None:
    practitioner, patient, consultation_id, _ = practice
    document = await clinic.store_document(consultation_id, "chat", "a.txt", "patient", chunked(b"t"), max_bytes=10)
    other = await clinic.add_practitioner("other@example.org", "another password", "Dr B")
    assert await clinic.practitioner_can_read_document(practitioner.id, document.id)
    assert not await clinic.practitioner_can_read_document(other.id, document.id)
    assert not await clinic.practitioner_can_read_document(practitioner.id, "unknown")
    assert not await clinic.practitioner_can_read_document("unknown", document.id)
    # access to the record, not to the consultation, is what counts
    await clinic.grant_access(other.id, patient.id)
    assert await clinic.practitioner_can_read_document(other.id, document.id)


async def test_leftover_part_files_are_swept_at_open(
    database: TestDatabase, docs_dir: pathlib.Path, practice: tuple[Practitioner, Patient, str, str], clinic: Clinic
) -> None:
    kept = await clinic.store_document(practice[2], "chat", "a.txt", "patient", chunked(b"t"), max_bytes=10)
    leftover = docs_dir / practice[2] / ".0123456789abcdef.part"
    leftover.write_bytes(b"half an upload from before a crash")
    two_hours_ago = time.time() - 7200
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    # a fresh one may be another node's upload in progress (shared documents folder): kept
    in_progress = docs_dir / practice[2] / ".fedcba9876543210.part"
    in_progress.write_bytes(b"being received by another node")
    reopened = await database.open(LIFETIME)
    try:
        assert not leftover.exists() and in_progress.exists()
        assert (await reopened.document_path(kept)).exists()
    finally:
        await reopened.close()


async def test_logs_carry_ids_not_names(
    clinic: Clinic, practice: tuple[Practitioner, Patient, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    document = await clinic.store_document(
        practice[2], "chat", "Bilan Jeanne Martin.txt", "patient", chunked(b"t"), max_bytes=10
    )
    await clinic.remove_document(document.id)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert document.id in text
    assert "Jeanne" not in text and "Bilan" not in text

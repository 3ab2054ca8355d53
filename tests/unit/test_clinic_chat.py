"""The chat's storage against a real SQLite file: what a message may hold, history order and limit."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers.databases import TestDatabase

from clinic import Clinic, NotFound

LIFETIME = datetime.timedelta(hours=2)
WHEN = datetime.datetime(2030, 1, 2, 9, 30, tzinfo=datetime.UTC)


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def clinic(database: TestDatabase) -> AsyncIterator[Clinic]:
    opened = await database.open(LIFETIME)
    yield opened
    await opened.close()


@pytest.fixture
async def consultations(clinic: Clinic) -> tuple[str, str]:
    practitioner = await clinic.add_practitioner("doc@example.org", "a long password", "Dr A")
    patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", datetime.date(1970, 5, 17))
    await clinic.grant_access(practitioner.id, patient.id)
    first, _ = await clinic.schedule_consultation(patient.id, practitioner.id, WHEN)
    second, _ = await clinic.schedule_consultation(patient.id, practitioner.id, WHEN)
    return first.id, second.id


async def test_history_keeps_every_kind_in_order(clinic: Clinic, consultations: tuple[str, str]) -> None:
    cid, other = consultations
    document = await clinic.store_document(cid, "chat", "cr.txt", "patient", one_chunk(b"hello"), max_bytes=100)
    await clinic.add_chat_message(cid, "system", "system", key="joined", params={"role": "patient"})
    await clinic.add_chat_message(cid, "text", "patient", text="Bonjour")
    await clinic.add_chat_message(cid, "file", "patient", document_id=document.id)
    await clinic.add_chat_message(other, "text", "practitioner", text="another consultation")
    history = await clinic.chat_history(cid, limit=10)
    assert [(m.kind, m.author) for m in history] == [("system", "system"), ("text", "patient"), ("file", "patient")]
    assert history[0].key == "joined" and history[0].params == {"role": "patient"}
    assert history[1].text == "Bonjour"
    assert history[2].document == document
    assert "Bonjour" not in repr(history[1])
    # a removed document leaves its message, without the file
    await clinic.remove_document(document.id)
    assert (await clinic.chat_history(cid, limit=10))[2].document is None


async def test_history_limit_keeps_the_latest(clinic: Clinic, consultations: tuple[str, str]) -> None:
    cid = consultations[0]
    for i in range(12):
        await clinic.add_chat_message(cid, "text", "patient", text=f"m{i}")
    assert [m.text for m in await clinic.chat_history(cid, limit=5)] == ["m7", "m8", "m9", "m10", "m11"]
    with pytest.raises(ValueError, match="limit"):
        await clinic.chat_history(cid, limit=0)


async def test_concurrent_messages_are_all_stored(clinic: Clinic, consultations: tuple[str, str]) -> None:
    cid = consultations[0]
    await asyncio.gather(*(clinic.add_chat_message(cid, "text", "patient", text=f"m{i}") for i in range(30)))
    assert sorted(m.text or "" for m in await clinic.chat_history(cid, limit=100)) == sorted(f"m{i}" for i in range(30))


BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("note", "patient", {"text": "x"}, "kind"),
    ("text", "nurse", {"text": "x"}, "author"),
    ("text", "system", {"text": "x"}, "participant author"),
    ("text", "patient", {}, "a text"),
    ("text", "patient", {"text": "x", "key": "joined"}, "nothing else"),
    ("file", "patient", {}, "a document"),
    ("system", "patient", {"key": "joined"}, "author 'system'"),
    ("system", "system", {}, "needs a key"),
    ("system", "system", {"key": "Joined!"}, "needs a key"),
    ("system", "system", {"key": "joined", "params": {"role": 3}}, "strings"),
    ("system", "system", {"key": "joined", "params": {"x": "y" * 3000}}, "under 2000"),
    ("text", "patient", {"text": "x", "params": {"a": "b"}}, "only system"),
]


@pytest.mark.parametrize(("kind", "author", "fields", "words"), BAD)
async def test_inconsistent_messages_are_refused(
    clinic: Clinic, consultations: tuple[str, str], kind: str, author: str, fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        await clinic.add_chat_message(consultations[0], kind, author, **fields)
    assert await clinic.chat_history(consultations[0], limit=10) == []


async def test_unknown_consultation_or_foreign_document(clinic: Clinic, consultations: tuple[str, str]) -> None:
    cid, other = consultations
    with pytest.raises(NotFound):
        await clinic.add_chat_message("nope", "text", "patient", text="x")
    foreign = await clinic.store_document(other, "chat", "a.txt", "patient", one_chunk(b"a"), max_bytes=10)
    with pytest.raises(NotFound):
        await clinic.add_chat_message(cid, "file", "patient", document_id=foreign.id)
    assert await clinic.chat_history(cid, limit=10) == []


async def test_logs_carry_no_text(
    clinic: Clinic, consultations: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await clinic.add_chat_message(consultations[0], "text", "patient", text="J'ai une douleur thoracique")
    assert "douleur" not in caplog.text

"""Several clinics ("nodes") on one database, on each engine; PostgreSQL's connection errors."""

from __future__ import annotations

import asyncio
import datetime
import pathlib
from collections.abc import AsyncIterator

import pytest
from helpers.databases import PostgresServer, TestDatabase, consultation_now, free_port, make

from clinic import Clinic
from clinic.accounts import LoginPolicy, RateLimit
from clinic.appointments import Letterhead
from clinic.errors import DatabaseUnavailable, TooManyAttempts

DAY = datetime.timedelta(days=1)
_THREE = RateLimit(3, datetime.timedelta(minutes=15))
# per account and address, per address, and past 3 failures on the account a new address is slowed down
LIMIT = LoginPolicy(pair=_THREE, address=_THREE, account_ceiling=3, slowdown=datetime.timedelta(minutes=1),
                    known_for=datetime.timedelta(days=90))


@pytest.fixture
async def nodes(database: TestDatabase) -> AsyncIterator[tuple[Clinic, Clinic]]:
    """Two clinics opened on the same database, as two nodes of one site would."""
    first = await database.open(DAY)
    second = await database.open(DAY)
    yield first, second
    await first.close()
    await second.close()


async def test_failed_logins_on_two_nodes_add_up_to_one_limit(nodes: tuple[Clinic, Clinic]) -> None:
    first, second = nodes
    await first.add_practitioner("a@example.org", "password a", "Dr A")
    for node in (first, second, first):
        assert await node.practice.login("a@example.org", "wrong", address="10.0.0.1", policy=LIMIT,
                                         lifetime=DAY, previous_token=None) is None
    for node in nodes:
        with pytest.raises(TooManyAttempts):
            await node.practice.login("a@example.org", "password a", address="10.0.0.2", policy=LIMIT,
                                      lifetime=DAY, previous_token=None)


async def test_a_session_opened_on_one_node_is_known_on_the_other(nodes: tuple[Clinic, Clinic]) -> None:
    first, second = nodes
    practitioner = await first.add_practitioner("a@example.org", "password a", "Dr A")
    login = await first.practice.login("a@example.org", "password a", address="x", policy=LIMIT,
                                       lifetime=DAY, previous_token=None)
    assert login is not None
    found = await second.practice.session(login.token)
    assert found is not None and found.practitioner.id == practitioner.id
    await second.practice.logout(login.token)
    assert await first.practice.session(login.token) is None


async def test_chat_written_by_two_nodes_at_once_keeps_every_message_in_order(
    nodes: tuple[Clinic, Clinic],
) -> None:
    first, second = nodes
    cid = await consultation_now(first)

    async def say(node: Clinic, author: str, count: int) -> list[str]:
        return [(await node.add_chat_message(cid, "text", author, text=f"{author} {i}")).id
                for i in range(count)]

    said = await asyncio.gather(say(first, "practitioner", 15), say(second, "patient", 15))
    history = await second.chat_history(cid, limit=100)
    assert len(history) == 30
    # each node's messages come back in the order that node wrote them
    for ids in said:
        assert [m.id for m in history if m.id in ids] == ids


async def test_an_unreachable_server_is_a_clear_error_without_the_password(tmp_path: pathlib.Path) -> None:
    url = f"postgresql://teleconsult:s3cret-pw@127.0.0.1:{free_port()}/teleconsult"
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:\d+/teleconsult") as caught:
        await Clinic.open(url, invitation_lifetime=DAY, documents_dir=tmp_path)
    assert "s3cret-pw" not in str(caught.value)


async def test_postgresql_needs_a_documents_folder() -> None:
    with pytest.raises(ValueError, match="documents_dir"):
        await Clinic.open("postgresql://127.0.0.1/x", invitation_lifetime=DAY)


async def test_a_shared_documents_folder_serves_every_node(database: TestDatabase) -> None:
    """Node A stores a file; node B lists and reads it; a node starting meanwhile spares A's upload."""
    first = await database.open(DAY)
    second = await database.open(DAY)
    try:
        cid = await consultation_now(first)
        halfway = asyncio.Event()
        go_on = asyncio.Event()

        async def slow_upload() -> AsyncIterator[bytes]:
            yield b"%PDF-1.4 first half, " * 60000  # past one write: a .part file is on disk
            halfway.set()
            await go_on.wait()
            yield b"second half"

        upload = asyncio.create_task(first.store_document(
            cid, "chat", "scan.pdf", "patient", slow_upload(), max_bytes=10 << 20))
        await asyncio.wait_for(halfway.wait(), 10)
        for _ in range(50):  # until the first write reached the disk (bounded)
            if any(database.documents.rglob("*.part")):
                break
            await asyncio.sleep(0.02)
        assert any(database.documents.rglob("*.part"))
        third = await database.open(DAY)  # a node starting sweeps leftovers: not this upload
        await third.close()
        go_on.set()
        document = await asyncio.wait_for(upload, 10)

        (listed,) = await second.list_documents(consultation_id=cid)
        assert listed == document
        data = (await second.document_path(listed)).read_bytes()
        assert data.endswith(b"second half") and len(data) == document.size
    finally:
        await first.close()
        await second.close()


async def test_each_queued_mail_is_claimed_by_one_node(nodes: tuple[Clinic, Clinic]) -> None:
    first, second = nodes
    practitioner = await first.add_practitioner("a@example.org", "password a", "Dr A")
    patient = await first.practice.create_patient(practitioner.id, "P", "p@example.org", datetime.date(1980, 1, 1))
    queued = set()
    for day in range(1, 5):
        _, _, mail_id = await first.practice.schedule(
            practitioner.id, patient.id, datetime.datetime(2030, 1, day, 9, tzinfo=datetime.UTC),
            base_url="https://x.example", tz=datetime.UTC)
        queued.add(mail_id)
    claims = await asyncio.gather(*(node.practice.mail_due(limit=3) for node in (first, second, first, second)))
    ids = [m.id for claim in claims for m in claim]
    assert sorted(ids) == sorted(queued)  # every message once, none twice
    assert await second.practice.mail_due() == []  # claimed: not due again before the lease ends


async def test_a_reminder_waits_for_its_time_then_one_node_claims_it(nodes: tuple[Clinic, Clinic]) -> None:
    first, second = nodes
    practitioner = await first.add_practitioner("a@example.org", "password a", "Dr A")
    patient = await first.practice.create_patient(practitioner.id, "P", "p@example.org", datetime.date(1980, 1, 1))
    # the appointment is just over an hour away, the reminder due an hour before: in a few seconds
    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1, seconds=2)
    letter = Letterhead(practice_name="Cabinet", sender="rdv@x.example", base_url="https://x.example",
                        tz=datetime.UTC, reminder_before=datetime.timedelta(hours=1))
    _, _, invitation = await first.practice.schedule(practitioner.id, patient.id, start, base_url="", tz=datetime.UTC,
                                                     letter=letter)
    assert [m.id for m in await second.practice.mail_due()] == [invitation]  # the reminder is not due yet
    due_at = await first.practice.mail_next_due_at()
    assert due_at is not None and abs(due_at - (start - datetime.timedelta(hours=1))) < datetime.timedelta(seconds=1)
    claims: list[list[str]] = []
    for _ in range(100):  # bounded: at most 10 s
        found = await asyncio.gather(*(node.practice.mail_due() for node in (first, second, first, second)))
        claims += [[m.kind for m in claim] for claim in found if claim]
        if claims:
            break
        await asyncio.sleep(0.1)
    assert claims == [["reminder"]]  # one node, once


async def test_reads_carry_on_after_a_postgresql_restart(postgres_server: PostgresServer,
                                                         tmp_path: pathlib.Path) -> None:
    database = make("postgresql", tmp_path, postgres_server)
    clinic = await database.open(DAY)
    try:
        cid = await consultation_now(clinic)
        await clinic.get_consultation(cid)
        postgres_server.restart()  # the pooled connection is now dead
        assert (await clinic.get_consultation(cid)).id == cid
        await clinic.add_chat_message(cid, "text", "patient", text="still here")
        assert [m.text for m in await clinic.chat_history(cid, limit=5)] == ["still here"]
    finally:
        await clinic.close()

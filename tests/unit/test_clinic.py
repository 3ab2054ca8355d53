"""The async Clinic facade against a real SQLite file and a real PostgreSQL (no mocks)."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import pathlib
import stat
import threading
from collections.abc import AsyncIterator

import pytest
from helpers.databases import TestDatabase

from clinic import (
    TRANSITIONS,
    AlreadyExists,
    Clinic,
    ClinicError,
    ConsultationState,
    InvalidTransition,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    NotFound,
    Patient,
    Practitioner,
    Role,
    Stage,
)

UTC = datetime.UTC
LIFETIME = datetime.timedelta(hours=2)
EMAIL = "Dr.House@Example.ORG"
PASSWORD = "correct horse battery staple"
DOB = datetime.date(1970, 5, 17)
S = ConsultationState


def every_value(database: TestDatabase) -> list[object]:
    """Every cell of every table."""
    return [cell for name in database.tables() for row in database.rows(f"SELECT * FROM {name}") for cell in row]


def file_bytes(database: TestDatabase) -> bytes:
    """The SQLite file and its WAL / shared-memory companions, concatenated (PostgreSQL: none)."""
    if database.kind != "sqlite":
        return b""
    path = pathlib.Path(database.target)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.fixture
async def clinic(database: TestDatabase) -> AsyncIterator[Clinic]:
    opened = await database.open(LIFETIME)
    yield opened
    await opened.close()


@pytest.fixture
async def practice(clinic: Clinic) -> tuple[Practitioner, Patient]:
    practitioner = await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
    patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", DOB)
    await clinic.grant_access(practitioner.id, patient.id)
    return practitioner, patient


# practitioners


@pytest.mark.parametrize(
    ("email", "password", "accepted"),
    [
        (EMAIL, PASSWORD, True),
        ("  dr.house@example.org ", PASSWORD, True),
        (EMAIL, PASSWORD.upper(), False),
        (EMAIL, PASSWORD + " ", False),
        (EMAIL, "", False),
        ("nobody@example.org", PASSWORD, False),
    ],
)
async def test_verify_practitioner(
    clinic: Clinic,
    practice: tuple[Practitioner, Patient],
    email: str,
    password: str,
    accepted: bool,
) -> None:
    practitioner, _ = practice
    result = await clinic.verify_practitioner(email, password)
    assert result == (practitioner if accepted else None)


async def test_practitioner_email_is_normalised_and_unique(clinic: Clinic) -> None:
    practitioner = await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
    assert practitioner.email == "dr.house@example.org"
    assert len(practitioner.id) == 32 and int(practitioner.id, 16) >= 0
    with pytest.raises(AlreadyExists):
        await clinic.add_practitioner(" DR.HOUSE@example.org", "other password", "Impostor")
    assert await clinic.find_practitioner("dr.house@EXAMPLE.org") == practitioner
    assert await clinic.find_practitioner("nobody@example.org") is None
    assert await clinic.get_practitioner(practitioner.id) == practitioner
    with pytest.raises(NotFound):
        await clinic.get_practitioner("0" * 32)


async def test_password_is_stored_as_argon2id_only(clinic: Clinic, database: TestDatabase) -> None:
    await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
    [(stored,)] = database.rows("SELECT password_hash FROM practitioner")
    assert isinstance(stored, str) and stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PASSWORD.encode() not in file_bytes(database)


async def test_set_practitioner_password(
    clinic: Clinic, practice: tuple[Practitioner, Patient]
) -> None:
    practitioner, _ = practice
    await clinic.set_practitioner_password(practitioner.id, "new password")
    assert await clinic.verify_practitioner(EMAIL, PASSWORD) is None
    assert await clinic.verify_practitioner(EMAIL, "new password") == practitioner
    with pytest.raises(NotFound):
        await clinic.set_practitioner_password("0" * 32, "whatever")


# patients and access


async def test_patient_round_trip(clinic: Clinic) -> None:
    patient = await clinic.add_patient("Jeanne Martin", "Jeanne@Example.org", DOB)
    assert await clinic.get_patient(patient.id) == patient
    assert patient.date_of_birth == DOB and patient.email == "jeanne@example.org"
    with pytest.raises(NotFound):
        await clinic.get_patient("0" * 32)


async def test_grant_access_is_idempotent(clinic: Clinic) -> None:
    practitioner = await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
    patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", DOB)
    assert not await clinic.has_access(practitioner.id, patient.id)
    await clinic.grant_access(practitioner.id, patient.id)
    await clinic.grant_access(practitioner.id, patient.id)
    assert await clinic.has_access(practitioner.id, patient.id)
    for practitioner_id, patient_id in [("0" * 32, patient.id), (practitioner.id, "0" * 32)]:
        with pytest.raises(NotFound):
            await clinic.grant_access(practitioner_id, patient_id)


# consultations and invitations


async def test_schedule_consultation(
    clinic: Clinic, practice: tuple[Practitioner, Patient], database: TestDatabase
) -> None:
    practitioner, patient = practice
    at = datetime.datetime(
        2031, 3, 4, 10, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    consultation, clear = await clinic.schedule_consultation(patient.id, practitioner.id, at)

    assert consultation.scheduled_at == at and consultation.scheduled_at.tzinfo is UTC
    assert consultation.state is S.SCHEDULED
    assert (
        consultation.stage(Role.PRACTITIONER)
        is consultation.stage(Role.PATIENT)
        is Stage.WAITING_ROOM
    )
    assert await clinic.get_consultation(consultation.id) == consultation
    assert set(clear) == set(Role) and clear[Role.PRACTITIONER] != clear[Role.PATIENT]

    for role, token in clear.items():
        invitation = await clinic.resolve_invitation(token)
        assert (invitation.role, invitation.consultation_id) == (role, consultation.id)
        assert invitation.revoked_at is None
        # the start is in the future, so validity counts from the start
        assert invitation.expires_at == at + LIFETIME

    # only hashes are stored: neither in any row nor anywhere in the files
    values = every_value(database)
    data = file_bytes(database)
    for token in clear.values():
        assert not any(isinstance(v, str) and token in v for v in values)
        assert token.encode() not in data
        assert hashlib.sha256(token.encode()).hexdigest() in values


async def test_invitation_for_a_past_start_counts_from_now(
    clinic: Clinic, practice: tuple[Practitioner, Patient]
) -> None:
    practitioner, patient = practice
    before = datetime.datetime.now(UTC)
    past = before - datetime.timedelta(days=3)
    _, clear = await clinic.schedule_consultation(patient.id, practitioner.id, past)
    after = datetime.datetime.now(UTC)
    invitation = await clinic.resolve_invitation(clear[Role.PATIENT])
    assert before + LIFETIME <= invitation.expires_at <= after + LIFETIME


async def test_schedule_needs_access_and_an_aware_datetime(clinic: Clinic) -> None:
    practitioner = await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
    patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", DOB)
    now = datetime.datetime.now(UTC)
    with pytest.raises(NotFound):
        await clinic.schedule_consultation(patient.id, practitioner.id, now)
    await clinic.grant_access(practitioner.id, patient.id)
    with pytest.raises(ValueError, match="naive"):
        await clinic.schedule_consultation(patient.id, practitioner.id, now.replace(tzinfo=None))
    with pytest.raises(NotFound):
        await clinic.get_consultation("0" * 32)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a" * 201,
        "not a token",
        "abc$def",
        "abc\n",
        "../../etc/passwd",
        "jéton",
        "' OR 1=1 --",
    ],
)
async def test_malformed_token_is_not_found_without_the_database(
    clinic: Clinic, token: str
) -> None:
    # a closed clinic cannot query anything, so this proves no trip to the database
    await clinic.close()
    with pytest.raises(InvitationNotFound):
        await clinic.resolve_invitation(token)


async def test_unknown_token_is_not_found(
    clinic: Clinic, practice: tuple[Practitioner, Patient]
) -> None:
    practitioner, patient = practice
    _, clear = await clinic.schedule_consultation(
        patient.id, practitioner.id, datetime.datetime.now(UTC)
    )
    for token in ["A" * 43, clear[Role.PATIENT][:-1], clear[Role.PATIENT] + "x"]:
        with pytest.raises(InvitationNotFound):
            await clinic.resolve_invitation(token)


async def test_expired_invitation(database: TestDatabase) -> None:
    clinic = await database.open(datetime.timedelta(0))
    try:
        practitioner = await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
        patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", DOB)
        await clinic.grant_access(practitioner.id, patient.id)
        past = datetime.datetime.now(UTC) - datetime.timedelta(hours=1)
        _, clear = await clinic.schedule_consultation(patient.id, practitioner.id, past)
        for token in clear.values():
            with pytest.raises(InvitationExpired):
                await clinic.resolve_invitation(token)
    finally:
        await clinic.close()


async def test_negative_lifetime_is_refused(database: TestDatabase) -> None:
    with pytest.raises(ValueError, match="negative"):
        await database.open(datetime.timedelta(seconds=-1))


async def test_revoked_invitation(clinic: Clinic, practice: tuple[Practitioner, Patient]) -> None:
    practitioner, patient = practice
    _, clear = await clinic.schedule_consultation(
        patient.id, practitioner.id, datetime.datetime.now(UTC)
    )
    invitation = await clinic.resolve_invitation(clear[Role.PATIENT])
    await clinic.revoke_invitation(invitation.id)
    await clinic.revoke_invitation(invitation.id)  # idempotent
    with pytest.raises(InvitationRevoked):
        await clinic.resolve_invitation(clear[Role.PATIENT])
    # the other side's link is untouched
    assert (await clinic.resolve_invitation(clear[Role.PRACTITIONER])).role is Role.PRACTITIONER
    with pytest.raises(NotFound):
        await clinic.revoke_invitation("0" * 32)


# the consultation state machine

PATH_TO = {
    S.SCHEDULED: [],
    S.WAITING: [S.WAITING],
    S.IN_CALL: [S.IN_CALL],
    S.ENDED: [S.ENDED],
    S.CLOSED: [S.ENDED, S.CLOSED],
}


async def test_update_consultation_follows_the_transition_table(
    clinic: Clinic, practice: tuple[Practitioner, Patient]
) -> None:
    practitioner, patient = practice
    now = datetime.datetime.now(UTC)
    wrong: list[str] = []
    for old in S:
        for new in S:
            consultation, _ = await clinic.schedule_consultation(patient.id, practitioner.id, now)
            for step in PATH_TO[old]:
                await clinic.update_consultation(
                    consultation.id,
                    state=step,
                    practitioner_stage=Stage.WAITING_ROOM,
                    patient_stage=Stage.WAITING_ROOM,
                )
            allowed = new is old or new in TRANSITIONS[old]
            try:
                updated = await clinic.update_consultation(
                    consultation.id,
                    state=new,
                    practitioner_stage=Stage.IN_CALL,
                    patient_stage=Stage.JOINED,
                )
            except InvalidTransition:
                stored = await clinic.get_consultation(consultation.id)
                if (
                    allowed
                    or stored.state is not old
                    or stored.practitioner_stage is not Stage.WAITING_ROOM
                ):
                    wrong.append(f"{old.value}->{new.value} refused or half-applied")
            else:
                stored = await clinic.get_consultation(consultation.id)
                if (
                    not allowed
                    or stored != updated
                    or (stored.state, stored.practitioner_stage, stored.patient_stage)
                    != (new, Stage.IN_CALL, Stage.JOINED)
                ):
                    wrong.append(f"{old.value}->{new.value} accepted wrongly or not persisted")
    assert wrong == []


async def test_update_unknown_consultation(clinic: Clinic) -> None:
    with pytest.raises(NotFound):
        await clinic.update_consultation(
            "0" * 32,
            state=S.WAITING,
            practitioner_stage=Stage.JOINED,
            patient_stage=Stage.WAITING_ROOM,
        )


# lifecycle


async def test_data_survives_close_and_reopen(database: TestDatabase) -> None:
    clinic = await database.open(LIFETIME)
    practitioner = await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
    patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", DOB)
    await clinic.grant_access(practitioner.id, patient.id)
    consultation, clear = await clinic.schedule_consultation(
        patient.id, practitioner.id, datetime.datetime.now(UTC)
    )
    consultation = await clinic.update_consultation(
        consultation.id,
        state=S.WAITING,
        practitioner_stage=Stage.JOINED,
        patient_stage=Stage.WAITING_ROOM,
    )
    await clinic.close()

    clinic = await database.open(LIFETIME)
    try:
        assert await clinic.verify_practitioner(EMAIL, PASSWORD) == practitioner
        assert await clinic.get_patient(patient.id) == patient
        assert await clinic.has_access(practitioner.id, patient.id)
        assert await clinic.get_consultation(consultation.id) == consultation
        invitation = await clinic.resolve_invitation(clear[Role.PATIENT])
        assert invitation.consultation_id == consultation.id
    finally:
        await clinic.close()


def clinic_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("clinic-db")}


async def test_close_twice_is_safe_and_stops_the_worker(database: TestDatabase) -> None:
    before = clinic_threads()
    clinic = await database.open(LIFETIME)
    assert len(clinic_threads() - before) == 1
    await clinic.close()
    await clinic.close()
    assert not clinic_threads() - before
    with pytest.raises(ClinicError, match="closed"):
        await clinic.get_patient("0" * 32)


async def test_concurrent_calls_are_serialised_safely(clinic: Clinic) -> None:
    patients = await asyncio.gather(
        *(clinic.add_patient(f"Patient {i}", f"p{i}@example.org", DOB) for i in range(20))
    )
    assert len({p.id for p in patients}) == 20
    fetched = await asyncio.gather(*(clinic.get_patient(p.id) for p in patients))
    assert fetched == list(patients)


async def test_logs_carry_ids_not_personal_data(
    clinic: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="clinic")
    practitioner = await clinic.add_practitioner(EMAIL, PASSWORD, "Dr House")
    patient = await clinic.add_patient("Jeanne Martin", "jeanne@example.org", DOB)
    await clinic.grant_access(practitioner.id, patient.id)
    await clinic.verify_practitioner(EMAIL, "wrong")
    _, clear = await clinic.schedule_consultation(
        patient.id, practitioner.id, datetime.datetime.now(UTC)
    )
    assert patient.id in caplog.text
    for secret in ["Jeanne", "jeanne@", "house@", "1970", PASSWORD, *clear.values()]:
        assert secret.lower() not in caplog.text.lower()


# demo practice


async def test_ensure_demo_reuses_practitioner_and_password(
    clinic: Clinic, tmp_path: pathlib.Path, database: TestDatabase
) -> None:
    data_dir = tmp_path / "data"
    first = await clinic.ensure_demo("https://tc.example/", data_dir)
    second = await clinic.ensure_demo("https://tc.example/", data_dir)

    assert first.practitioner_email == second.practitioner_email == "demo@teleconsult.invalid"
    assert first.practitioner_password == second.practitioner_password
    assert first.consultation_id != second.consultation_id
    demo = await clinic.verify_practitioner(
        "demo@teleconsult.invalid", second.practitioner_password
    )
    assert demo is not None and demo.display_name == "Dr Démo"
    assert database.rows("SELECT COUNT(*) FROM practitioner") == [(1,)]
    assert database.rows("SELECT COUNT(*) FROM patient") == [(1,)]

    document = second.as_json()
    assert set(document) == {
        "base_url",
        "practitioner",
        "consultation_id",
        "practitioner_link",
        "patient_link",
    }
    assert set(document["practitioner"]) == {"email", "password"}

    for role, link in [
        (Role.PRACTITIONER, second.practitioner_link),
        (Role.PATIENT, second.patient_link),
    ]:
        assert link.startswith("https://tc.example/c/")
        invitation = await clinic.resolve_invitation(link.rsplit("/", 1)[1])
        assert (invitation.role, invitation.consultation_id) == (role, second.consultation_id)
    consultation = await clinic.get_consultation(second.consultation_id)
    patient = await clinic.get_patient(consultation.patient_id)
    assert (patient.name, patient.email, patient.date_of_birth) == (
        "Patient Démo",
        "patient@teleconsult.invalid",
        datetime.date(1980, 1, 1),
    )

    credentials = data_dir / "demo-credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text())["password"] == second.practitioner_password
    assert [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
async def test_ensure_demo_replaces_a_lost_password(
    clinic: Clinic, tmp_path: pathlib.Path, damage: str
) -> None:
    first = await clinic.ensure_demo("http://localhost:8443", tmp_path)
    credentials = tmp_path / "demo-credentials.json"
    if damage == "delete":
        credentials.unlink()
    else:
        credentials.write_text("{not json")
    second = await clinic.ensure_demo("http://localhost:8443", tmp_path)
    assert second.practitioner_password != first.practitioner_password
    assert (
        await clinic.verify_practitioner("demo@teleconsult.invalid", first.practitioner_password)
        is None
    )
    assert await clinic.verify_practitioner(
        "demo@teleconsult.invalid", second.practitioner_password
    )
    assert json.loads(credentials.read_text())["password"] == second.practitioner_password
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


async def test_ensure_demo_password_survives_reopen(
    database: TestDatabase, tmp_path: pathlib.Path
) -> None:
    clinic = await database.open(LIFETIME)
    first = await clinic.ensure_demo("http://localhost:8443", tmp_path)
    await clinic.close()
    clinic = await database.open(LIFETIME)
    try:
        second = await clinic.ensure_demo("http://localhost:8443", tmp_path)
        assert second.practitioner_password == first.practitioner_password
        assert await clinic.verify_practitioner(
            "demo@teleconsult.invalid", second.practitioner_password
        )
    finally:
        await clinic.close()

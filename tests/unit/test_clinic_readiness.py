"""Readiness (devices + connection test) stored with the consultation, against real SQLite files."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest
from helpers.databases import TestDatabase

from clinic import Clinic, NetTest, NotFound, Readiness, Role

UTC = datetime.UTC
GOOD = NetTest(verdict="good", rtt_ms=40.5, jitter_ms=2.0, loss_pct=0.0, up_kbps=980.0, down_kbps=1010.0)


@pytest.fixture
async def clinic(database: TestDatabase) -> AsyncIterator[Clinic]:
    opened = await database.open(datetime.timedelta(hours=2))
    yield opened
    await opened.close()


@pytest.fixture
async def consultation_id(clinic: Clinic) -> str:
    doctor = await clinic.add_practitioner("dr@example.org", "a long password", "Dr")
    patient = await clinic.add_patient("Jeanne", "j@example.org", datetime.date(1970, 1, 1))
    await clinic.grant_access(doctor.id, patient.id)
    consultation, _ = await clinic.schedule_consultation(patient.id, doctor.id, datetime.datetime.now(UTC))
    return consultation.id


async def test_nothing_reported_yet(clinic: Clinic, consultation_id: str) -> None:
    assert await clinic.get_readiness(consultation_id) == {}


async def test_save_and_read_back(clinic: Clinic, consultation_id: str) -> None:
    saved = await clinic.save_readiness(consultation_id, Role.PATIENT, mic="on", camera="off", test=GOOD)
    assert (saved.mic, saved.camera, saved.test) == ("on", "off", GOOD)
    assert saved.tested_at is not None and saved.tested_at.tzinfo is not None
    found = await clinic.get_readiness(consultation_id)
    assert found == {Role.PATIENT: saved}
    assert found[Role.PATIENT].as_json()["test"]["rtt_ms"] == 40.5


async def test_devices_alone_keep_the_last_test(clinic: Clinic, consultation_id: str) -> None:
    first = await clinic.save_readiness(consultation_id, Role.PATIENT, mic="on", camera="on", test=GOOD)
    later = await clinic.save_readiness(consultation_id, Role.PATIENT, mic="off", camera="missing", test=None)
    assert (later.mic, later.camera, later.test, later.tested_at) == ("off", "missing", GOOD, first.tested_at)


async def test_a_new_test_replaces_the_old_one_and_sides_are_apart(clinic: Clinic, consultation_id: str) -> None:
    await clinic.save_readiness(consultation_id, Role.PATIENT, mic="on", camera="on", test=GOOD)
    failed = NetTest(verdict="failed", reason="ice")
    await clinic.save_readiness(consultation_id, Role.PATIENT, mic="on", camera="on", test=failed)
    await clinic.save_readiness(consultation_id, Role.PRACTITIONER, mic="on", camera="on", test=None)
    found = await clinic.get_readiness(consultation_id)
    assert found[Role.PATIENT].test == failed
    assert found[Role.PRACTITIONER].test is None and found[Role.PRACTITIONER].tested_at is None


async def test_survives_reopening(database: TestDatabase) -> None:
    lifetime = datetime.timedelta(hours=2)
    first = await database.open(lifetime)
    doctor = await first.add_practitioner("dr@example.org", "a long password", "Dr")
    patient = await first.add_patient("Jeanne", "j@example.org", datetime.date(1970, 1, 1))
    await first.grant_access(doctor.id, patient.id)
    consultation, _ = await first.schedule_consultation(patient.id, doctor.id, datetime.datetime.now(UTC))
    relay = NetTest(verdict="fair", rtt_ms=250, loss_pct=6.5, up_kbps=600, down_kbps=800, relay=True)
    saved = await first.save_readiness(consultation.id, Role.PATIENT, mic="on", camera="on", test=relay)
    await first.close()
    second = await database.open(lifetime)
    try:
        assert (await second.get_readiness(consultation.id))[Role.PATIENT] == saved
    finally:
        await second.close()


async def test_unknown_consultation(clinic: Clinic) -> None:
    with pytest.raises(NotFound):
        await clinic.save_readiness("0" * 32, Role.PATIENT, mic="on", camera="on", test=None)


@pytest.mark.parametrize(
    ("mic", "camera", "test", "names"),
    [
        ("loud", "on", None, "mic"),
        ("on", "", None, "camera"),
        ("on", "on", {"verdict": "great"}, "verdict"),
        ("on", "on", {"verdict": "good", "loss_pct": 120}, "loss_pct"),
        ("on", "on", {"verdict": "good", "rtt_ms": -1}, "rtt_ms"),
        ("on", "on", {"verdict": "good", "up_kbps": True}, "up_kbps"),
        ("on", "on", {"verdict": "failed", "reason": ""}, "reason"),
    ],
)
async def test_bad_values_are_refused(
    clinic: Clinic, consultation_id: str, mic: str, camera: str, test: dict[str, object] | None, names: str
) -> None:
    with pytest.raises(ValueError, match=names):
        net = None if test is None else NetTest(**test)  # type: ignore[arg-type]
        await clinic.save_readiness(consultation_id, Role.PATIENT, mic=mic, camera=camera, test=net)
    assert await clinic.get_readiness(consultation_id) == {}


def test_as_json_is_the_protocol_object() -> None:
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    r = Readiness("c", Role.PATIENT, "on", "missing", NetTest(verdict="poor", loss_pct=20.0), now, now)
    assert r.as_json() == {
        "mic": "on", "camera": "missing", "tested_at": "2026-01-02T03:04:05+00:00",
        "test": {"verdict": "poor", "reason": None, "rtt_ms": None, "jitter_ms": None, "loss_pct": 20.0,
                 "up_kbps": None, "down_kbps": None, "relay": None},
    }

"""Pure logic of clinic/: state machine, models, tokens, timestamps (no database)."""

from __future__ import annotations

import datetime
import itertools

import pytest

from clinic import (
    Consultation,
    ConsultationState,
    DemoPractice,
    InvalidTransition,
    Patient,
    Practitioner,
    Role,
    Stage,
    check_transition,
    timestamps,
    tokens,
)
from clinic.registry import normalise_email

S = ConsultationState

# restated from the product spec on purpose, not derived from clinic.TRANSITIONS
ALLOWED = {
    (S.SCHEDULED, S.WAITING),
    (S.SCHEDULED, S.IN_CALL),
    (S.WAITING, S.IN_CALL),
    (S.IN_CALL, S.ENDED),
    (S.WAITING, S.ENDED),
    (S.SCHEDULED, S.ENDED),
    (S.ENDED, S.CLOSED),
} | {(state, state) for state in S}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)), ids=lambda s: str(s.value))
def test_check_transition(old: ConsultationState, new: ConsultationState) -> None:
    if (old, new) in ALLOWED:
        check_transition(old, new)
    else:
        with pytest.raises(InvalidTransition) as caught:
            check_transition(old, new)
        assert old.value in str(caught.value) and new.value in str(caught.value)


@pytest.mark.parametrize(
    ("role", "expected"),
    [(Role.PRACTITIONER, Stage.JOINED), (Role.PATIENT, Stage.WAITING_ROOM)],
)
def test_consultation_stage_per_role(role: Role, expected: Stage) -> None:
    consultation = Consultation(
        id="c",
        patient_id="p",
        practitioner_id="d",
        scheduled_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
        state=S.WAITING,
        practitioner_stage=Stage.JOINED,
        patient_stage=Stage.WAITING_ROOM,
    )
    assert consultation.stage(role) is expected


def test_demo_practice_json_contract_and_repr_hides_secrets() -> None:
    practice = DemoPractice(
        base_url="https://example.test",
        practitioner_email="demo@teleconsult.invalid",
        practitioner_password="s3cret-pass",
        consultation_id="abc",
        practitioner_link="https://example.test/c/tok1",
        patient_link="https://example.test/c/tok2",
    )
    assert practice.as_json() == {
        "base_url": "https://example.test",
        "practitioner": {"email": "demo@teleconsult.invalid", "password": "s3cret-pass"},
        "consultation_id": "abc",
        "practitioner_link": "https://example.test/c/tok1",
        "patient_link": "https://example.test/c/tok2",
    }
    assert "s3cret-pass" not in repr(practice)
    assert "tok1" not in repr(practice)


def test_personal_data_stays_out_of_repr() -> None:
    patient = Patient("pid", "Jeanne Martin", "jeanne@example.org", datetime.date(1970, 5, 17))
    practitioner = Practitioner("did", "dr@example.org", "Dr House")
    for secret in ("Jeanne", "jeanne@example.org", "1970"):
        assert secret not in repr(patient)
    assert "dr@example.org" not in repr(practitioner) and "House" not in repr(practitioner)
    assert "pid" in repr(patient)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("abcDEF012_-", True),
        ("a" * 200, True),
        ("a" * 201, False),
        ("", False),
        ("abc def", False),
        ("abc\n", False),
        ("abc$", False),
        ("abc=", False),
        ("../etc/passwd", False),
        ("é", False),
    ],
)
def test_token_well_formed(token: str, expected: bool) -> None:
    assert tokens.is_well_formed(token) is expected


def test_new_tokens_are_unique_well_formed_and_hashed_as_hex() -> None:
    first, second = tokens.new_token(), tokens.new_token()
    assert first != second
    assert tokens.is_well_formed(first) and len(first) == 43
    digest = tokens.token_hash(first)
    assert len(digest) == 64 and int(digest, 16) >= 0 and first not in digest


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (
            datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            "2030-01-02T03:04:05.000000+00:00",
        ),
        (
            datetime.datetime(
                2030, 1, 2, 5, 4, 5, 7, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2030-01-02T03:04:05.000007+00:00",
        ),
    ],
)
def test_timestamps_round_trip_as_utc(value: datetime.datetime, text: str) -> None:
    assert timestamps.to_text(value) == text
    decoded = timestamps.from_text(text)
    assert decoded == value and decoded.tzinfo is datetime.UTC


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        timestamps.to_text(datetime.datetime(2030, 1, 1))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Dr@Example.ORG", "dr@example.org"), ("  a@b.c \n", "a@b.c"), ("x@y.z", "x@y.z")],
)
def test_normalise_email(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "   "])
def test_normalise_email_refuses_blank(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_email(raw)

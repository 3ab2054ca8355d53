"""The teleconsultation consent over the real WebSocket protocol, and the ledger behind it (issue 19 item 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clinic.notices import TELECONSULTATION
from helpers.server import running_server
from helpers.ws_client import Client


async def consent_seen(client: Client, decision: str) -> dict[str, Any]:
    """The next state message showing this teleconsultation consent (bounded by recv's timeout)."""
    while True:
        state = await client.recv("state")
        if state["consent"]["teleconsultation"] == decision:
            return state


async def test_no_join_without_consent_and_every_decision_in_the_ledger(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"practice.contact": "01 23 45 67 89"}) as server:
        demo = await server.demo()
        doctor = await Client.open(demo["practitioner_link"])
        patient = await Client.open(demo["patient_link"], consent=False)
        welcome = await patient.recv("welcome")
        assert welcome["notices"]["teleconsultation"]["version"] == TELECONSULTATION.version
        assert welcome["notices"]["teleconsultation"]["fr"] and welcome["practice_contact"] == "01 23 45 67 89"
        await doctor.send(type="join")
        await patient.state(peer="joined")
        # not asked yet: pending, and neither ready nor join is accepted
        for action in ("ready", "join"):
            await patient.send(type=action)
            assert (await patient.recv("error"))["code"] == "consent-required"
        assert (await doctor.recv("state"))["consent"]["teleconsultation"] == "pending"
        # refused: the practitioner's card says so, joining is still refused
        await patient.send(type="consent", decision="refused", version=TELECONSULTATION.version)
        await consent_seen(doctor, "refused")
        await patient.send(type="ready")
        assert (await patient.recv("error"))["code"] == "consent-required"
        # an old notice version, a practitioner answering, a made-up decision: refused, nothing recorded
        for who, fields, code in (
            (patient, {"decision": "given", "version": "teleconsultation-1999"}, "outdated-notice"),
            (doctor, {"decision": "given", "version": TELECONSULTATION.version}, "not-allowed"),
            (patient, {"decision": "maybe", "version": TELECONSULTATION.version}, "bad-message"),
        ):
            await who.send(type="consent", **fields)
            assert (await who.recv("error"))["code"] == code
        # given: the call starts
        await patient.send(type="consent", decision="given", version=TELECONSULTATION.version)
        await patient.send(type="ready")
        for c in (doctor, patient):
            await c.state(me="in_call", peer="in_call")
        # withdrawn in the call: the patient is taken out of it, and cannot come back without consenting again
        await patient.send(type="consent", decision="withdrawn", version=TELECONSULTATION.version)
        state = await consent_seen(doctor, "withdrawn")
        assert state["peer"]["stage"] == "waiting_room"
        await patient.send(type="ready")
        assert (await patient.recv("error"))["code"] == "consent-required"

        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        ledger = await server.clinic.consents_of_patient(consultation.patient_id)
        assert [(e.subject, e.actor, e.decision, e.notice_version) for e in ledger] == [
            ("teleconsultation", "patient", d, TELECONSULTATION.version) for d in ("refused", "given", "withdrawn")]
        assert all(e.consultation_id == demo["consultation_id"] and e.at for e in ledger)
        audited = [e for e in await server.clinic.practice.audit_export() if e.action == "consent.record"]
        assert [e.object_id for e in audited] == [e.id for e in ledger]
        await doctor.close()
        await patient.close()
    # a patient who joined, then withdrew, cannot be pulled into the call by the practitioner
    async with running_server(tmp_path / "data2") as server:
        other = await server.demo()
        doctor = await Client.open(other["practitioner_link"])
        patient = await Client.open(other["patient_link"])  # accepts the notice
        await consent_seen(patient, "given")
        await patient.send(type="join")
        await doctor.state(peer="joined")
        await patient.send(type="consent", decision="withdrawn", version=TELECONSULTATION.version)
        await consent_seen(doctor, "withdrawn")
        await doctor.send(type="join")
        assert (await doctor.recv("error"))["code"] == "consent-required"
        assert (await server.clinic.get_consultation(other["consultation_id"])).patient_stage.value == "joined"
        await doctor.close()
        await patient.close()
    # the decision survives a restart: the hub reads the ledger
    async with running_server(tmp_path / "data") as server:
        link = server.base_url + "/c/" + demo["patient_link"].rsplit("/c/", 1)[1]
        patient = await Client.open(link, consent=False)
        assert (await patient.recv("state"))["consent"]["teleconsultation"] == "withdrawn"
        await patient.close()


async def test_the_ledger_refuses_values_it_does_not_know(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        with pytest.raises(ValueError):
            await server.clinic.record_consent(demo["consultation_id"], "patient", "teleconsultation", "given", "v0")
        with pytest.raises(ValueError):
            await server.clinic.record_consent(demo["consultation_id"], "nurse", "teleconsultation", "given",
                                               TELECONSULTATION.version)
        assert await server.clinic.latest_consent(demo["consultation_id"]) is None

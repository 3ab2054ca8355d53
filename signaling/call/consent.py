"""The patient's consent in a live consultation: the notice, the decision, the gate before the call.

The decisions themselves live in the clinic's consent ledger (clinic/consent.py);
this keeps the one that counts now so the hub can refuse `join`/`ready` without
a database trip.
"""

from __future__ import annotations

import logging
from typing import Any

from clinic import Clinic, Role
from clinic.consent import ConsentEntry
from clinic.notices import RECORDING, TELECONSULTATION

from ..errors import ProtocolError

logger = logging.getLogger(__name__)

#: What the patient may send in a `consent` message.
PATIENT_DECISIONS = ("given", "refused", "withdrawn")


class ConsentGate:
    """The teleconsultation consent of one consultation, as the hub sees it."""

    def __init__(self, consultation_id: str, clinic: Clinic, latest: ConsentEntry | None) -> None:
        self.consultation_id = consultation_id
        self._clinic = clinic
        self.decision: str | None = None if latest is None else latest.decision

    def snapshot(self) -> dict[str, Any]:
        """For the `state` message: `pending` until the patient answers."""
        return {"teleconsultation": self.decision or "pending", "version": TELECONSULTATION.version}

    def check(self, role: Role, action: str, patient_enters_call: bool) -> None:
        """Refuse the patient's `join` / `ready`, and any step putting the patient in the call,
        until the notice is accepted (a patient who joined, then withdrew, stays out)."""
        if self.decision == "given":
            return
        if role is Role.PATIENT and action in ("join", "ready"):
            raise ProtocolError("consent-required",
                                "the patient must accept the teleconsultation notice before joining")
        if patient_enters_call:
            raise ProtocolError("consent-required", "the patient has not accepted the teleconsultation notice")

    async def decide(self, role: Role, decision: str, version: str) -> None:
        """The patient's answer to the notice (or its withdrawal), written to the ledger."""
        if role is not Role.PATIENT:
            raise ProtocolError("not-allowed", "only the patient answers the teleconsultation notice")
        if decision not in PATIENT_DECISIONS:
            raise ProtocolError("bad-message", f"'consent.decision' must be one of {', '.join(PATIENT_DECISIONS)}")
        if version != TELECONSULTATION.version:
            raise ProtocolError("outdated-notice", "the notice changed: reload the page to read the new one")
        await self._clinic.record_consent(self.consultation_id, "patient", "teleconsultation", decision, version)
        self.decision = decision
        logger.info("Consultation(%s) teleconsultation consent: %s", self.consultation_id, decision)

    async def recording_answer(self, role: Role, recording_id: str, accept: bool) -> None:
        """A recording consent answer, into the same ledger."""
        await self._clinic.record_consent(self.consultation_id, role.value, "recording",
                                          "given" if accept else "refused", RECORDING.version, recording_id)


def notice_json() -> dict[str, Any]:
    """The notices as the patient's page shows them (`welcome`)."""
    return {"teleconsultation": TELECONSULTATION.as_json(), "recording": RECORDING.as_json()}

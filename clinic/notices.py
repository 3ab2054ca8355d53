"""The notices a patient consents to, versioned: a changed text gets a new version (the ledger keeps it).

The text is short on purpose; the practice's own information sheet says the rest.
"""

from __future__ import annotations

import dataclasses
from typing import Final


@dataclasses.dataclass(frozen=True, slots=True)
class Notice:
    """One version of a notice, in French and English."""

    subject: str
    version: str
    fr: str
    en: str

    def as_json(self) -> dict[str, str]:
        return {"subject": self.subject, "version": self.version, "fr": self.fr, "en": self.en}


TELECONSULTATION: Final = Notice(
    subject="teleconsultation",
    version="teleconsultation-2026-12-v1",
    fr=("Cette consultation a lieu par vidéo. Votre praticien reste tenu au secret médical ; "
        "l'image et le son ne sont pas enregistrés sans votre accord, demandé à part. Les documents "
        "échangés sont conservés chiffrés dans votre dossier, selon la durée légale de conservation. "
        "Vous pouvez demander une copie de votre dossier à votre praticien, et retirer votre accord "
        "à tout moment : la consultation s'arrête alors. En cas de doute, une consultation au cabinet "
        "reste possible."),
    en=("This consultation takes place over video. Your practitioner remains bound by medical "
        "confidentiality; picture and sound are not recorded without your consent, asked separately. "
        "Documents exchanged are kept encrypted in your record for the legal retention period. You may "
        "ask your practitioner for a copy of your record, and withdraw your consent at any time: the "
        "consultation then stops. If in doubt, you can still be seen at the practice."),
)

RECORDING: Final = Notice(
    subject="recording",
    version="recording-2026-12-v1",
    fr=("Votre correspondant souhaite enregistrer la consultation (image et son). L'enregistrement "
        "est conservé chiffré dans votre dossier. Acceptez-vous ?"),
    en=("Your correspondent would like to record the consultation (picture and sound). The recording "
        "is kept encrypted in your record. Do you agree?"),
)

NOTICES: Final = {n.subject: n for n in (TELECONSULTATION, RECORDING)}

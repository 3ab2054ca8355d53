"""Closing the act: state, audit, the patient's link and email, in one transaction (sync, worker thread)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Collection
from typing import Final

from . import audit, mail_templates, timestamps
from .agenda import Agenda
from .database import Database, transaction
from .errors import InvalidTransition, NotFound
from .mail import MailQueue
from .models import ConsultationState, Stage, check_transition
from .patient_links import PatientLinks

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Closing:
    """What closing an act did."""

    consultation_id: str
    documents: int
    link_id: str | None  # the patient's new link, when documents were shared
    mail_id: str | None


#: Documents the patient's link gives access to unless the practitioner chose otherwise at closing:
#: imported at closing, or shared in the chat (recordings and board images only when ticked).
PATIENT_SOURCES: Final = ("closing", "chat")


def live_document_ids(conn: Database, consultation_id: str) -> list[str]:
    """The ids of the consultation's documents shared with the patient that were not removed."""
    rows = conn.execute("SELECT id FROM document WHERE consultation_id = ? AND removed_at IS NULL"
                        " AND (shared = 1 OR (shared IS NULL AND source IN ('closing', 'chat')))"
                        " ORDER BY created_at, id", (consultation_id,)).fetchall()
    return [row["id"] for row in rows]


def choose_shared(conn: Database, consultation_id: str, share: Collection[str]) -> None:
    """Share exactly the documents in `share` (ValueError for an id not of this consultation)."""
    known = {row["id"] for row in conn.execute(
        "SELECT id FROM document WHERE consultation_id = ? AND removed_at IS NULL", (consultation_id,))}
    unknown = set(share) - known
    if unknown:
        raise ValueError(f"{len(unknown)} document(s) to share are not documents of this consultation")
    for document_id in known:
        conn.execute("UPDATE document SET shared = ? WHERE id = ?", (int(document_id in share), document_id))


class Closer:
    """Closes consultations.  Blocking: call from the worker thread."""

    def __init__(self, conn: Database, agenda: Agenda, links: PatientLinks, mail: MailQueue) -> None:
        self._conn = conn
        self._agenda = agenda
        self._links = links
        self._mail = mail

    def close(self, consultation_id: str, practitioner_id: str, *, base_url: str,
              link_lifetime: datetime.timedelta, tz: datetime.tzinfo,
              share: Collection[str] | None = None, practice_name: str = "Teleconsult") -> Closing:
        """Mark the act closed; if it shares documents, make the patient's link and queue the email.

        `share`: the ids of the documents the patient's link gives (None: the default by source).
        NotFound unless `practitioner_id` is the consultation's practitioner;
        InvalidTransition unless the call has ended (and the act is not closed yet);
        ValueError for a document to share that is not the consultation's.
        """
        with transaction(self._conn) as conn:
            consultation = self._agenda.get_consultation(consultation_id)
            if consultation.practitioner_id != practitioner_id:
                raise NotFound(f"no consultation {consultation_id!r} for practitioner {practitioner_id!r}")
            if consultation.state is ConsultationState.CLOSED:
                raise InvalidTransition("the act is already closed")
            check_transition(consultation.state, ConsultationState.CLOSED)
            conn.execute(
                "UPDATE consultation SET state = ?, practitioner_stage = ?, patient_stage = ?, updated_at = ?"
                " WHERE id = ?",
                (ConsultationState.CLOSED.value, Stage.ENDED.value, Stage.ENDED.value,
                 timestamps.to_text(timestamps.utc_now()), consultation_id),
            )
            audit.append(conn, "practitioner", practitioner_id, "consultation.close",
                         patient_id=consultation.patient_id, consultation_id=consultation_id)
            if share is not None:
                choose_shared(conn, consultation_id, share)
            documents = live_document_ids(conn, consultation_id)
            link_id = mail_id = None
            if documents:
                link, token = self._links.create(conn, consultation.patient_id, consultation_id, link_lifetime)
                link_id = link.id
                audit.append(conn, "practitioner", practitioner_id, "patient_link.create",
                             patient_id=consultation.patient_id, consultation_id=consultation_id, object_id=link.id)
                patient = conn.execute("SELECT email, language FROM patient WHERE id = ?",
                                       (consultation.patient_id,)).fetchone()
                practitioner = conn.execute("SELECT display_name FROM practitioner WHERE id = ?",
                                            (practitioner_id,)).fetchone()["display_name"]
                expires = mail_templates.date_text(link.expires_at, tz, patient["language"])
                url = f"{base_url.rstrip('/')}/d/{token}"
                mail = mail_templates.render("documents", patient["language"], {
                    "practice": practice_name, "practitioner": practitioner, "expires": expires}, url)
                mail_id = self._mail.enqueue(conn, "documents", patient["email"], mail.subject, mail.text,
                                             patient_id=consultation.patient_id, consultation_id=consultation_id,
                                             html=mail.html)
        logger.info("Consultation(%s) closed with %d documents", consultation_id, len(documents))
        return Closing(consultation_id, len(documents), link_id, mail_id)

"""A patient's record as one ZIP archive (the right of access), and its erasure (the right to erasure).

Export: the documents (plain bytes, decrypted), the consultations with their
dates, the consent ledger, the record's audit extract, and a human-readable
index.html naming everything.  Built in a temporary file, never in memory.

Erasure: refused before the legal retention date (the last consultation plus
`retention_days`), with that date given; otherwise every row and file of the
patient goes, and one audit entry (ids only) says so.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import logging
import os
import pathlib
import shutil
import tempfile
import zipfile
from typing import Any, Final

from sealing import Keyring, open_file

from . import audit, timestamps
from .consent import ConsentEntry, ConsentLedger
from .database import Database, transaction
from .errors import ClinicError, NotFound
from .filetypes import safe_name
from .models import Consultation, Document, Patient

logger = logging.getLogger(__name__)

_COPY_BYTES: Final = 1 << 20


class ErasureRefused(ClinicError):
    """The record is still under legal retention; `until` is the first day erasure is allowed."""

    def __init__(self, until: datetime.date) -> None:
        super().__init__(f"this record is kept until {until.isoformat()} (legal retention); erasure is refused")
        self.until = until


@dataclasses.dataclass(frozen=True, slots=True)
class RecordContents:
    """Everything an export holds, read in one go in the database thread."""

    patient: Patient
    consultations: list[Consultation]
    documents: list[Document]
    consents: list[ConsentEntry]
    events: list[audit.AuditEvent]


def _consultation_json(c: Consultation) -> dict[str, Any]:
    return {"id": c.id, "scheduled_at": timestamps.to_text(c.scheduled_at), "state": c.state.value,
            "practitioner_id": c.practitioner_id,
            "cancelled_at": None if c.cancelled_at is None else timestamps.to_text(c.cancelled_at)}


def _index_html(contents: RecordContents, names: dict[str, str], exported_at: str) -> str:
    e = html.escape
    p = contents.patient
    rows = "".join(
        f"<tr><td>{e(timestamps.to_text(c.scheduled_at))}</td>"
        f"<td>{e('cancelled' if c.cancelled_at else c.state.value)}</td>"
        f"<td>{e(c.id)}</td></tr>" for c in contents.consultations)
    docs = "".join(
        f'<tr><td><a href="{e(names[d.id])}">{e(d.name)}</a></td><td>{e(d.source)}</td><td>{e(d.created_at)}</td>'
        f"<td>{d.size}</td><td>{e(d.sha256)}</td></tr>" for d in contents.documents)
    consents = "".join(
        f"<tr><td>{e(c.at)}</td><td>{e(c.subject)}</td><td>{e(c.decision)}</td><td>{e(c.actor)}</td>"
        f"<td>{e(c.notice_version)}</td></tr>" for c in contents.consents)
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Dossier / Record</title></head><body>
<h1>Dossier de {e(p.name)} / Record of {e(p.name)}</h1>
<p>Né(e) le / born {e(p.date_of_birth.isoformat())} · {e(p.email)} · exporté le / exported {e(exported_at)}</p>
<h2>Consultations (consultations.json)</h2>
<table border="1"><tr><th>Date (UTC)</th><th>État / state</th><th>Id</th></tr>{rows}</table>
<h2>Documents (documents/)</h2>
<table border="1"><tr><th>Nom / name</th><th>Origine / source</th><th>Ajouté / added</th><th>Octets / bytes</th>
<th>SHA-256</th></tr>{docs}</table>
<h2>Consentements / consents (consents.json)</h2>
<table border="1"><tr><th>Date (UTC)</th><th>Objet / subject</th><th>Décision</th><th>Qui / who</th>
<th>Version de la notice</th></tr>{consents}</table>
<h2>Journal d'accès / audit extract (audit.json)</h2>
<p>{len(contents.events)} entrées / entries.</p>
</body></html>
"""


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def write_archive(contents: RecordContents, documents_dir: pathlib.Path, keyring: Keyring | None,
                  folder: pathlib.Path) -> pathlib.Path:
    """Write the ZIP into a new temporary file under `folder` and return its path (blocking)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=folder)
    os.close(fd)
    path = pathlib.Path(name)
    exported_at = timestamps.to_text(timestamps.utc_now())
    names: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for d in contents.documents:
                names[d.id] = f"documents/{d.created_at[:10]}-{d.id[:8]}-{safe_name(d.name)}"
                source = documents_dir / d.consultation_id / d.id
                with open_file(source, keyring) as src, z.open(names[d.id], "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, _COPY_BYTES)
            z.writestr("consultations.json", _dump([_consultation_json(c) for c in contents.consultations]))
            z.writestr("consents.json", _dump([c.as_json() for c in contents.consents]))
            z.writestr("audit.json", _dump([ev.as_json() for ev in contents.events]))
            z.writestr("documents.json", _dump(
                [{"file": names[d.id], "name": d.name, "source": d.source, "media_type": d.media_type,
                  "size": d.size, "sha256": d.sha256, "created_at": d.created_at,
                  "consultation_id": d.consultation_id} for d in contents.documents]))
            z.writestr("index.html", _index_html(contents, names, exported_at))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def read_contents(conn: Database, patient: Patient, consultations: list[Consultation],
                  documents: list[Document]) -> RecordContents:
    """The consents and audit extract of a record (the caller checked access)."""
    return RecordContents(patient, consultations, documents, ConsentLedger(conn).of_patient(patient.id),
                          audit.for_patient(conn, patient.id, limit=100000))


# ---------------------------------------------------------------- erasure

#: Tables holding a patient's rows through a consultation, children first.
_BY_CONSULTATION: Final = (
    "whiteboard_action", "whiteboard_stroke", "whiteboard_background", "whiteboard",
    "chat_message", "readiness", "invitation", "retired_invitation", "consent_entry",
)


def retention_until(conn: Database, patient_id: str, retention_days: int) -> datetime.date:
    """The first day the record may be erased: its last consultation (or creation) plus the retention."""
    row = conn.execute("SELECT created_at FROM patient WHERE id = ?", (patient_id,)).fetchone()
    if row is None:
        raise NotFound(f"no patient {patient_id!r}")
    last = conn.execute("SELECT MAX(scheduled_at) AS last FROM consultation WHERE patient_id = ?",
                        (patient_id,)).fetchone()["last"]
    start = max(row["created_at"], last or row["created_at"])
    return (timestamps.from_text(start) + datetime.timedelta(days=retention_days)).date()


def erase(conn: Database, patient_id: str, retention_days: int,
          today: datetime.date | None = None) -> list[str]:
    """Delete every row of the patient (ErasureRefused before the retention date); returns the
    consultation ids, whose folders the caller deletes.  One audit entry by the operator."""
    until = retention_until(conn, patient_id, retention_days)
    if (today or timestamps.utc_now().date()) < until:
        raise ErasureRefused(until)
    with transaction(conn):
        consultations = [r["id"] for r in conn.execute("SELECT id FROM consultation WHERE patient_id = ?",
                                                        (patient_id,))]
        marks = ", ".join("?" * len(consultations))
        if consultations:
            # join passes point at the invitations (clinic/join_passes.py): they go first
            conn.execute(f"DELETE FROM join_pass WHERE invitation_id IN (SELECT id FROM invitation"
                         f" WHERE consultation_id IN ({marks}))", consultations)
            for table in _BY_CONSULTATION:
                conn.execute(f"DELETE FROM {table} WHERE consultation_id IN ({marks})", consultations)
        conn.execute("DELETE FROM patient_link_session WHERE link_id IN "
                     "(SELECT id FROM patient_link WHERE patient_id = ?)", (patient_id,))
        for table in ("patient_link", "mail_message", "document", "consent_entry"):
            conn.execute(f"DELETE FROM {table} WHERE patient_id = ?", (patient_id,))
        conn.execute("DELETE FROM consultation WHERE patient_id = ?", (patient_id,))
        conn.execute("DELETE FROM access_grant WHERE patient_id = ?", (patient_id,))
        conn.execute("DELETE FROM patient WHERE id = ?", (patient_id,))
        audit.append(conn, "operator", None, "patient.erase", patient_id=patient_id)
    logger.info("Patient(%s) erased: %d consultation(s)", patient_id, len(consultations))
    return consultations


def delete_folders(data_dir: pathlib.Path, consultation_ids: list[str]) -> None:
    """The files of erased consultations: documents, recordings, whiteboard pages (blocking)."""
    for cid in consultation_ids:
        for name in ("documents", "recordings", "whiteboard"):
            shutil.rmtree(data_dir / name / cid, ignore_errors=True)

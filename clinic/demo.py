"""The demo practice: one practitioner, one patient, a fresh consultation per call (sync)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import pathlib
import secrets
import uuid
from typing import Final

from . import timestamps
from .agenda import Agenda
from .models import DemoPractice, Role
from .registry import Registry

logger = logging.getLogger(__name__)

DEMO_PRACTITIONER_EMAIL: Final = "demo@teleconsult.invalid"
DEMO_PRACTITIONER_NAME: Final = "Dr Démo"
DEMO_PATIENT_NAME: Final = "Patient Démo"
DEMO_PATIENT_EMAIL: Final = "patient@teleconsult.invalid"
DEMO_PATIENT_BIRTH: Final = datetime.date(1980, 1, 1)
CREDENTIALS_FILE: Final = "demo-credentials.json"


def read_password(path: pathlib.Path) -> str | None:
    """Return the demo password saved at `path`, or None if absent or unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        logger.warning("Demo credentials file %s is unreadable; making new ones", path)
        return None
    password = document.get("password") if isinstance(document, dict) else None
    if not isinstance(password, str) or not password:
        logger.warning("Demo credentials file %s has no password; making new ones", path)
        return None
    return password


def write_password(path: pathlib.Path, email: str, password: str) -> None:
    """Save the demo credentials at `path`, readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = json.dumps({"email": email, "password": password}, indent=2) + "\n"
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # created 0o600 from the start: the secret is never readable by others, even briefly
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask said
            file.write(document)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def ensure_demo(
    registry: Registry,
    agenda: Agenda,
    base_url: str,
    data_dir: pathlib.Path,
) -> DemoPractice:
    """Create or reuse the demo practice and schedule a new consultation starting now."""
    credentials = data_dir / CREDENTIALS_FILE
    saved = read_password(credentials)
    password = saved or secrets.token_urlsafe(12)
    practitioner = registry.find_practitioner(DEMO_PRACTITIONER_EMAIL)
    if practitioner is None:
        practitioner = registry.add_practitioner(
            DEMO_PRACTITIONER_EMAIL, password, DEMO_PRACTITIONER_NAME
        )
    elif saved is None or registry.verify_practitioner(DEMO_PRACTITIONER_EMAIL, password) is None:
        # the saved file is what the operator reads, so it must keep working
        registry.set_practitioner_password(practitioner.id, password)
    if saved is None:
        write_password(credentials, DEMO_PRACTITIONER_EMAIL, password)

    patient = registry.find_patient(DEMO_PATIENT_NAME, DEMO_PATIENT_EMAIL)
    if patient is None:
        patient = registry.add_patient(DEMO_PATIENT_NAME, DEMO_PATIENT_EMAIL, DEMO_PATIENT_BIRTH)
    registry.grant_access(practitioner.id, patient.id)

    consultation, clear = agenda.schedule_consultation(
        patient.id, practitioner.id, timestamps.utc_now()
    )
    root = base_url.rstrip("/")
    logger.info("Demo practice ready with Consultation(%s)", consultation.id)
    return DemoPractice(
        base_url=base_url,
        practitioner_email=practitioner.email,
        practitioner_password=password,
        consultation_id=consultation.id,
        practitioner_link=f"{root}/c/{clear[Role.PRACTITIONER]}",
        patient_link=f"{root}/c/{clear[Role.PATIENT]}",
    )

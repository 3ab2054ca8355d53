"""Teleconsult's domain: practitioners, patients, consultations, invitations.

Imports neither aiohttp nor aiortc; signaling/ wires it to the web.
"""

from .clinic import Clinic
from .errors import (
    ActClosed,
    AlreadyExists,
    ClinicError,
    DocumentTooLarge,
    DocumentTypeRefused,
    InvalidTransition,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    NotFound,
    QuotaExceeded,
)
from .models import (
    TRANSITIONS,
    Consultation,
    ConsultationState,
    DemoPractice,
    Document,
    DocumentAuthor,
    DocumentSource,
    Invitation,
    NetTest,
    Patient,
    Practitioner,
    Readiness,
    Role,
    Stage,
    check_transition,
)

__all__ = [
    "TRANSITIONS",
    "ActClosed",
    "QuotaExceeded",
    "AlreadyExists",
    "Clinic",
    "ClinicError",
    "Consultation",
    "ConsultationState",
    "DemoPractice",
    "Document",
    "DocumentAuthor",
    "DocumentSource",
    "DocumentTooLarge",
    "DocumentTypeRefused",
    "InvalidTransition",
    "Invitation",
    "InvitationExpired",
    "InvitationNotFound",
    "InvitationRevoked",
    "NetTest",
    "NotFound",
    "Patient",
    "Practitioner",
    "Readiness",
    "Role",
    "Stage",
    "check_transition",
]

"""Schema migrations: one ordered list of SQL scripts for SQLite and PostgreSQL.

Write portable SQL (TEXT, INTEGER, REAL, standard constraints, ON CONFLICT): on
PostgreSQL, INTEGER becomes BIGINT, REAL becomes DOUBLE PRECISION and an INTEGER
PRIMARY KEY (SQLite's auto-numbered rowid) an identity column (see `postgresql()`).
What cannot be portable (triggers, data fixes) is a `Dialects` entry: one script per engine.

The version is the number of migrations applied: SQLite keeps it in PRAGMA
user_version, PostgreSQL in the one-row table `teleconsult_schema`.  Each migration
commits atomically with its new version (DDL is transactional on both), under the
write lock, so two nodes starting together migrate once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from typing import Final

from .database import Database, statements, transaction
from .errors import ClinicError

logger = logging.getLogger(__name__)

__all__ = ["MIGRATIONS", "Dialects", "migrate", "postgresql", "schema_version", "statements"]


@dataclasses.dataclass(frozen=True, slots=True)
class Dialects:
    """A migration written once per engine, where portable SQL cannot say it."""

    sqlite: str
    postgresql: str


Migration = str | Dialects

_V1: Final = """
CREATE TABLE practitioner (
    id TEXT NOT NULL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE patient (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX patient_email ON patient (email);

CREATE TABLE access_grant (
    practitioner_id TEXT NOT NULL REFERENCES practitioner (id),
    patient_id TEXT NOT NULL REFERENCES patient (id),
    granted_at TEXT NOT NULL,
    PRIMARY KEY (practitioner_id, patient_id)
);

CREATE INDEX access_grant_patient ON access_grant (patient_id);

CREATE TABLE consultation (
    id TEXT NOT NULL PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patient (id),
    practitioner_id TEXT NOT NULL REFERENCES practitioner (id),
    scheduled_at TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('scheduled', 'waiting', 'in_call', 'ended', 'closed')),
    practitioner_stage TEXT NOT NULL
        CHECK (practitioner_stage IN ('waiting_room', 'joined', 'in_call', 'ended')),
    patient_stage TEXT NOT NULL
        CHECK (patient_stage IN ('waiting_room', 'joined', 'in_call', 'ended')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX consultation_patient ON consultation (patient_id);

CREATE INDEX consultation_practitioner ON consultation (practitioner_id, scheduled_at);

CREATE TABLE invitation (
    id TEXT NOT NULL PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    role TEXT NOT NULL CHECK (role IN ('practitioner', 'patient')),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (consultation_id, role)
);
"""

# each side's latest device state and connection test (docs/connection-test.md)
_V2: Final = """
CREATE TABLE readiness (
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    role TEXT NOT NULL CHECK (role IN ('practitioner', 'patient')),
    mic TEXT NOT NULL CHECK (mic IN ('on', 'off', 'missing')),
    camera TEXT NOT NULL CHECK (camera IN ('on', 'off', 'missing')),
    verdict TEXT CHECK (verdict IN ('good', 'fair', 'poor', 'failed')),
    reason TEXT,
    rtt_ms REAL,
    jitter_ms REAL,
    loss_pct REAL,
    up_kbps REAL,
    down_kbps REAL,
    relay INTEGER CHECK (relay IN (0, 1)),
    tested_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (consultation_id, role)
);
"""

# files kept with a consultation (clinic/documents.py); the bytes live under data_dir/documents
_DOCUMENTS: Final = """
CREATE TABLE document (
    id TEXT NOT NULL PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    patient_id TEXT NOT NULL REFERENCES patient (id),
    source TEXT NOT NULL CHECK (source IN ('chat', 'closing', 'recording', 'whiteboard')),
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    added_by TEXT NOT NULL CHECK (added_by IN ('practitioner', 'patient', 'system')),
    created_at TEXT NOT NULL,
    removed_at TEXT
);

CREATE INDEX document_consultation ON document (consultation_id);

CREATE INDEX document_patient ON document (patient_id);
"""

# the in-call chat (clinic/chat.py): text, shared files and system events, in order
_CHAT: Final = """
CREATE TABLE chat_message (
    id TEXT NOT NULL PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    kind TEXT NOT NULL CHECK (kind IN ('text', 'file', 'system')),
    author TEXT NOT NULL CHECK (author IN ('practitioner', 'patient', 'system')),
    text TEXT,
    document_id TEXT REFERENCES document (id),
    system_key TEXT,
    params TEXT,
    created_at TEXT NOT NULL
);

CREATE INDEX chat_message_consultation ON chat_message (consultation_id, created_at);
"""

# the practice: login sessions, attempt counters, the patient's document links,
# the mail queue and the append-only audit log (document ids refer to the document store)
_PRACTICE_TABLES: Final = """
CREATE TABLE practitioner_session (
    token_hash TEXT NOT NULL PRIMARY KEY,
    practitioner_id TEXT NOT NULL REFERENCES practitioner (id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX practitioner_session_practitioner ON practitioner_session (practitioner_id);

CREATE TABLE attempt (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at TEXT NOT NULL
);

CREATE INDEX attempt_scope_key ON attempt (scope, key, at);

CREATE TABLE patient_link (
    id TEXT NOT NULL PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patient (id),
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_at TEXT,
    first_opened_at TEXT,
    last_opened_at TEXT,
    created_at TEXT NOT NULL
);

CREATE INDEX patient_link_patient ON patient_link (patient_id);

CREATE TABLE patient_link_session (
    token_hash TEXT NOT NULL PRIMARY KEY,
    link_id TEXT NOT NULL REFERENCES patient_link (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE mail_message (
    id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('invitation', 'documents')),
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    patient_id TEXT REFERENCES patient (id),
    consultation_id TEXT REFERENCES consultation (id),
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);

CREATE INDEX mail_message_due ON mail_message (state, next_attempt_at);

CREATE INDEX mail_message_patient ON mail_message (patient_id);

CREATE TABLE audit_event (
    seq INTEGER NOT NULL PRIMARY KEY,
    at TEXT NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('practitioner', 'patient', 'system', 'operator')),
    actor_id TEXT,
    action TEXT NOT NULL,
    patient_id TEXT,
    consultation_id TEXT,
    document_id TEXT,
    object_id TEXT
);

CREATE INDEX audit_event_patient ON audit_event (patient_id, seq);
"""

# the shared whiteboard (clinic/board.py): settings, background documents, strokes, each side's history
_WHITEBOARD: Final = """
CREATE TABLE whiteboard (
    consultation_id TEXT NOT NULL PRIMARY KEY REFERENCES consultation (id),
    is_open INTEGER NOT NULL CHECK (is_open IN (0, 1)),
    background_id TEXT,
    page INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE whiteboard_background (
    id TEXT NOT NULL PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    kind TEXT NOT NULL CHECK (kind IN ('image', 'pdf')),
    sizes TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX whiteboard_background_consultation ON whiteboard_background (consultation_id);

CREATE TABLE whiteboard_stroke (
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    author TEXT NOT NULL CHECK (author IN ('practitioner', 'patient')),
    sheet TEXT NOT NULL,
    color TEXT NOT NULL,
    width REAL NOT NULL,
    points TEXT NOT NULL,
    visible INTEGER NOT NULL CHECK (visible IN (0, 1)),
    PRIMARY KEY (consultation_id, id)
);

CREATE TABLE whiteboard_action (
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    seq INTEGER NOT NULL,
    author TEXT NOT NULL CHECK (author IN ('practitioner', 'patient')),
    kind TEXT NOT NULL CHECK (kind IN ('draw', 'erase', 'clear')),
    changes TEXT NOT NULL,
    undone INTEGER NOT NULL CHECK (undone IN (0, 1)),
    PRIMARY KEY (consultation_id, seq)
);
"""

_TYPES: Final = (
    # SQLite's INTEGER PRIMARY KEY numbers rows by itself: an identity column does that here
    (re.compile(r"\bINTEGER NOT NULL PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    # SQLite integers are 64-bit and its reals double precision
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
)


def postgresql(script: str) -> str:
    """A portable migration script as PostgreSQL runs it (some type names differ)."""
    for pattern, replacement in _TYPES:
        script = pattern.sub(replacement, script)
    return script


# the audit log refuses UPDATE and DELETE (both engines raise an integrity error)
_AUDIT_APPEND_ONLY: Final = Dialects(
    sqlite="""
CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;

CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;
""",
    postgresql="""
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();

CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();

CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
""",
)

_PRACTICE: Final = Dialects(
    sqlite=_PRACTICE_TABLES + _AUDIT_APPEND_ONLY.sqlite,
    postgresql=postgresql(_PRACTICE_TABLES) + _AUDIT_APPEND_ONLY.postgresql,
)

# chat order within one consultation (SQLite's rowid gave it; PostgreSQL has no rowid)
_CHAT_SEQ: Final = Dialects(
    sqlite="""
ALTER TABLE chat_message ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

UPDATE chat_message SET seq = rowid;

CREATE INDEX chat_message_seq ON chat_message (consultation_id, seq);
""",
    postgresql="""
ALTER TABLE chat_message ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

CREATE INDEX chat_message_seq ON chat_message (consultation_id, seq);
""",
)

# the audit log as a hash chain (clinic/audit.py): earlier entries stay NULL and are folded
# into the first chained entry's prev_hash
_AUDIT_CHAIN: Final = """
ALTER TABLE audit_event ADD COLUMN prev_hash TEXT;

ALTER TABLE audit_event ADD COLUMN hash TEXT;
"""

# the consent ledger (clinic/consent.py): append-only decisions, the latest per subject counts
# (`seq` orders decisions taken within the same second)
_CONSENT_TABLE: Final = """
CREATE TABLE consent_entry (
    id TEXT NOT NULL PRIMARY KEY,
    seq INTEGER NOT NULL,
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    patient_id TEXT NOT NULL REFERENCES patient (id),
    actor TEXT NOT NULL CHECK (actor IN ('patient', 'practitioner')),
    subject TEXT NOT NULL CHECK (subject IN ('teleconsultation', 'recording')),
    notice_version TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('given', 'refused', 'withdrawn')),
    recording_id TEXT,
    at TEXT NOT NULL
);

CREATE INDEX consent_entry_consultation ON consent_entry (consultation_id, subject, seq);

CREATE INDEX consent_entry_patient ON consent_entry (patient_id, seq);
"""
_CONSENT: Final = Dialects(
    sqlite=_CONSENT_TABLE + """
CREATE TRIGGER consent_entry_no_update BEFORE UPDATE ON consent_entry
BEGIN
    SELECT RAISE(ABORT, 'consent_entry is append-only');
END;
""",
    postgresql=postgresql(_CONSENT_TABLE) + """
CREATE FUNCTION consent_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_entry is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER consent_entry_no_update BEFORE UPDATE ON consent_entry
    FOR EACH ROW EXECUTE FUNCTION consent_entry_append_only();
""",
)

# the practitioner's choice at closing of what the patient's link gives (clinic/closing.py);
# NULL: the default by source (imported and chat files yes, recordings and board images no)
_DOCUMENT_SHARE: Final = """
ALTER TABLE document ADD COLUMN shared INTEGER CHECK (shared IN (0, 1));
"""

#: Every migration ever shipped, oldest first; index + 1 is the schema version.
# the operator can disable a practitioner's account (teleconsult practitioner disable)
_ACCOUNT_DISABLED: Final = """
ALTER TABLE practitioner ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
"""

# issue 20: the patient's mail language, cancelled and moved appointments (SEQUENCE of the .ics),
# mails with an HTML part and a calendar attachment, reminders (send_after: not before) and withdrawn mails;
# the hashes of links a move replaced, so an old link says "moved" rather than "unknown"
_APPOINTMENTS_COMMON: Final = """
ALTER TABLE patient ADD COLUMN language TEXT NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en'));
ALTER TABLE consultation ADD COLUMN cancelled_at TEXT;
ALTER TABLE consultation ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
CREATE TABLE retired_invitation (
    token_hash TEXT NOT NULL PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultation (id),
    retired_at TEXT NOT NULL
);
"""

_MAIL_KINDS: Final = "('invitation', 'documents', 'reminder', 'moved', 'cancelled')"
_MAIL_STATES: Final = "('queued', 'sent', 'failed', 'withdrawn')"

_APPOINTMENTS: Final = Dialects(
    # SQLite cannot change a CHECK: the mail table is rebuilt (nothing references it)
    sqlite=_APPOINTMENTS_COMMON + f"""
CREATE TABLE mail_message_new (
    id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN {_MAIL_KINDS}),
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    patient_id TEXT REFERENCES patient (id),
    consultation_id TEXT REFERENCES consultation (id),
    state TEXT NOT NULL CHECK (state IN {_MAIL_STATES}),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    html TEXT NOT NULL DEFAULT '',
    calendar TEXT,
    send_after TEXT
);
INSERT INTO mail_message_new (id, kind, recipient, subject, body, patient_id, consultation_id, state, attempts,
    last_error, next_attempt_at, created_at, sent_at)
    SELECT id, kind, recipient, subject, body, patient_id, consultation_id, state, attempts,
    last_error, next_attempt_at, created_at, sent_at FROM mail_message;
DROP TABLE mail_message;
ALTER TABLE mail_message_new RENAME TO mail_message;
CREATE INDEX mail_message_due ON mail_message (state, next_attempt_at);
CREATE INDEX mail_message_patient ON mail_message (patient_id);
CREATE INDEX mail_message_consultation ON mail_message (consultation_id);
""",
    postgresql=postgresql(_APPOINTMENTS_COMMON) + f"""
ALTER TABLE mail_message DROP CONSTRAINT mail_message_kind_check;
ALTER TABLE mail_message ADD CONSTRAINT mail_message_kind_check CHECK (kind IN {_MAIL_KINDS});
ALTER TABLE mail_message DROP CONSTRAINT mail_message_state_check;
ALTER TABLE mail_message ADD CONSTRAINT mail_message_state_check CHECK (state IN {_MAIL_STATES});
ALTER TABLE mail_message ADD COLUMN html TEXT NOT NULL DEFAULT '';
ALTER TABLE mail_message ADD COLUMN calendar TEXT;
ALTER TABLE mail_message ADD COLUMN send_after TEXT;
CREATE INDEX mail_message_consultation ON mail_message (consultation_id);
""",
)

# a logged-in practitioner's pass into their own consultation, bound to the login session (clinic/join_passes.py)
_JOIN_PASS: Final = """
CREATE TABLE join_pass (
    token_hash TEXT NOT NULL PRIMARY KEY,
    invitation_id TEXT NOT NULL REFERENCES invitation (id),
    session_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX join_pass_expiry ON join_pass (expires_at);
"""

MIGRATIONS: Final[tuple[Migration, ...]] = (
    _V1,
    _V2,
    _DOCUMENTS,
    _CHAT,
    _PRACTICE,
    _WHITEBOARD,
    _CHAT_SEQ,
    _ACCOUNT_DISABLED,
    _AUDIT_CHAIN,
    _CONSENT,
    _DOCUMENT_SHARE,
    _APPOINTMENTS,
    _JOIN_PASS,
)

def script_for(migration: Migration, db: Database) -> str:
    """The SQL of `migration` for this database's engine."""
    if isinstance(migration, Dialects):
        return migration.postgresql if db.dialect == "postgresql" else migration.sqlite
    return postgresql(migration) if db.dialect == "postgresql" else migration


def schema_version(db: Database) -> int:
    """Return the schema version recorded in the database."""
    if db.dialect == "sqlite":
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        return version
    # a query on the catalog, not to_regclass(): that reads a cache which may predate
    # the commit of a node that migrated while we waited for the write lock
    if db.execute("SELECT 1 FROM pg_tables WHERE schemaname = current_schema()"
                  " AND tablename = 'teleconsult_schema'").fetchone() is None:
        return 0
    row = db.execute("SELECT version FROM teleconsult_schema").fetchone()
    return 0 if row is None else int(row[0])


def _record_version(db: Database, version: int) -> None:
    if db.dialect == "sqlite":
        # user_version is part of the database header, so it commits atomically with the DDL
        db.execute(f"PRAGMA user_version = {version:d}")
        return
    db.execute("CREATE TABLE IF NOT EXISTS teleconsult_schema (version INTEGER NOT NULL)")
    if db.execute("UPDATE teleconsult_schema SET version = ?", (version,)).rowcount == 0:
        db.execute("INSERT INTO teleconsult_schema (version) VALUES (?)", (version,))


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the schema up to date, one transaction per migration; return how many ran."""
    known = len(migrations)
    found = schema_version(db)
    if found > known:
        raise ClinicError(
            f"database schema version {found} is newer than this version of Teleconsult "
            f"supports ({known}); upgrade Teleconsult or use a matching database"
        )
    applied = 0
    for version in range(found + 1, known + 1):
        with transaction(db):
            # re-read under the write lock: another process may have migrated meanwhile
            if schema_version(db) >= version:
                continue
            db.run_script(script_for(migrations[version - 1], db))
            _record_version(db, version)
        applied += 1
        logger.info("Database schema migrated to version %d", version)
    return applied

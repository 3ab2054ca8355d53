"""Join passes: how a logged-in practitioner enters their own consultation from the day list.

Invitation tokens are stored hashed, so the server cannot show a practitioner their
link again; minting a new one would replace it (and break the link already handed
out, e.g. by `teleconsult demo`).  A join pass is a second, independent token for
the same practitioner invitation, bound to the login session that asked for it: it
revokes nothing, dies with the session (logout, expiry, disabled account) and after
`lifetime`, and is refused once the invitation itself is revoked.  Because it is a
token like the invitation's, every `/c/{token}/…` route takes it unchanged.
"""

from __future__ import annotations

import datetime

from . import audit, timestamps, tokens
from .database import Database, transaction
from .errors import NotFound
from .models import Invitation, Role


class JoinPasses:
    """Issue and resolve join passes (sync, worker thread)."""

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def issue(self, session_token: str, practitioner_id: str, consultation_id: str,
              lifetime: datetime.timedelta) -> str:
        """A fresh pass to `consultation_id` for its practitioner's live session; NotFound otherwise."""
        now = timestamps.utc_now()
        session_hash = tokens.token_hash(session_token)
        with transaction(self._conn) as conn:
            session = conn.execute(
                "SELECT expires_at FROM practitioner_session WHERE token_hash = ? AND practitioner_id = ?",
                (session_hash, practitioner_id)).fetchone()
            invitation = conn.execute(
                "SELECT i.id, c.patient_id FROM invitation i JOIN consultation c ON c.id = i.consultation_id"
                " WHERE i.consultation_id = ? AND i.role = ? AND c.practitioner_id = ? AND c.cancelled_at IS NULL",
                (consultation_id, Role.PRACTITIONER.value, practitioner_id)).fetchone()
            if session is None or invitation is None:
                raise NotFound(f"no consultation {consultation_id!r} for this practitioner's session")
            expires_at = min(now + lifetime, timestamps.from_text(session["expires_at"]))
            token = tokens.new_token()
            # passes of closed sessions would otherwise pile up
            conn.execute("DELETE FROM join_pass WHERE expires_at < ?", (timestamps.to_text(now),))
            conn.execute(
                "INSERT INTO join_pass (token_hash, invitation_id, session_hash, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (tokens.token_hash(token), invitation["id"], session_hash, timestamps.to_text(now),
                 timestamps.to_text(expires_at)))
            audit.append(conn, "practitioner", practitioner_id, "consultation.join",
                         patient_id=invitation["patient_id"], consultation_id=consultation_id)
        return token


def resolve(conn: Database, token_hash: str) -> Invitation | None:
    """The practitioner invitation a live pass stands for (its expiry is the pass's), or None.

    A pass whose session ended, whose practitioner was disabled or no longer holds the
    consultation, or whose invitation was revoked, resolves to nothing.
    """
    row = conn.execute(
        "SELECT i.id, i.consultation_id, i.revoked_at, j.expires_at FROM join_pass j"
        " JOIN invitation i ON i.id = j.invitation_id"
        " JOIN consultation c ON c.id = i.consultation_id"
        " JOIN practitioner_session s ON s.token_hash = j.session_hash"
        " JOIN practitioner p ON p.id = s.practitioner_id"
        " WHERE j.token_hash = ? AND p.disabled = 0 AND c.practitioner_id = p.id AND i.revoked_at IS NULL"
        " AND s.expires_at > ?",
        (token_hash, timestamps.to_text(timestamps.utc_now()))).fetchone()
    if row is None:
        return None
    return Invitation(id=row["id"], consultation_id=row["consultation_id"], role=Role.PRACTITIONER,
                      expires_at=timestamps.from_text(row["expires_at"]), revoked_at=None)

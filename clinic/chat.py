"""The in-call chat of a consultation: text, shared files and system events (sync, worker thread)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
from typing import Final, Literal, cast, get_args

from . import timestamps
from .database import Database, Row, transaction
from .errors import NotFound
from .models import Document

logger = logging.getLogger(__name__)

ChatKind = Literal["text", "file", "system"]
ChatAuthor = Literal["practitioner", "patient", "system"]
CHAT_KINDS: Final[tuple[str, ...]] = get_args(ChatKind)
CHAT_AUTHORS: Final[tuple[str, ...]] = get_args(ChatAuthor)

#: A system message's key: what the browser translates ("joined", "recording.started"...).
_KEY: Final = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_MAX_PARAMS_CHARS: Final = 2000
_DOCUMENT_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Document))


@dataclasses.dataclass(frozen=True, slots=True)
class ChatMessage:
    """One line of a consultation's chat, as stored."""

    id: str
    consultation_id: str
    kind: ChatKind
    author: ChatAuthor
    # what people wrote is patient data: never in repr, so never in a log line
    text: str | None = dataclasses.field(repr=False)
    document: Document | None  # kind "file": None once the document was removed
    key: str | None  # kind "system": the event, translated by the browser
    params: dict[str, str] = dataclasses.field(repr=False)
    created_at: str  # ISO-8601 UTC


def check_message(kind: str, author: str, text: str | None, document_id: str | None,
                  key: str | None, params: dict[str, str] | None) -> None:
    """Refuse an inconsistent message with ValueError (the signaling layer checks user input first)."""
    if kind not in CHAT_KINDS:
        raise ValueError(f"kind must be one of {CHAT_KINDS}, got {kind!r}")
    if author not in CHAT_AUTHORS:
        raise ValueError(f"author must be one of {CHAT_AUTHORS}, got {author!r}")
    if kind == "text" and (author == "system" or not text or document_id or key):
        raise ValueError("a text message needs a participant author and a text, nothing else")
    if kind == "file" and (author == "system" or not document_id or text or key):
        raise ValueError("a file message needs a participant author and a document, nothing else")
    if kind == "system":
        if author != "system" or text or document_id:
            raise ValueError("a system message has the author 'system' and a key only")
        if key is None or not _KEY.fullmatch(key):
            raise ValueError(f"a system message needs a key like 'joined' or 'recording.started', got {key!r}")
    if params and kind != "system":
        raise ValueError("only system messages carry params")
    for name, value in (params or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError("params must map strings to strings")
    if len(json.dumps(params or {})) > _MAX_PARAMS_CHARS:
        raise ValueError(f"params must stay under {_MAX_PARAMS_CHARS} characters of JSON")


def _message(row: Row) -> ChatMessage:
    document = None
    if row["d_id"] is not None and row["d_removed_at"] is None:
        document = Document(**{name: row[f"d_{name}"] for name in _DOCUMENT_COLUMNS})
    return ChatMessage(
        id=row["id"],
        consultation_id=row["consultation_id"],
        kind=cast(ChatKind, row["kind"]),
        author=cast(ChatAuthor, row["author"]),
        text=row["text"],
        document=document,
        key=row["system_key"],
        params=json.loads(row["params"]) if row["params"] else {},
        created_at=row["created_at"],
    )


_SELECT: Final = (
    "SELECT m.*, " + ", ".join(f"d.{name} AS d_{name}" for name in _DOCUMENT_COLUMNS)
    + " FROM chat_message AS m LEFT JOIN document AS d ON d.id = m.document_id"
)


class ChatBook:
    """Rows of the `chat_message` table.

    Blocking: every method runs SQL, so call it from the worker thread.
    """

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def add(self, consultation_id: str, kind: str, author: str, *, text: str | None = None,
            document_id: str | None = None, key: str | None = None,
            params: dict[str, str] | None = None) -> ChatMessage:
        """Store a message and return it; NotFound for an unknown consultation or document."""
        check_message(kind, author, text, document_id, key, params)
        message_id = uuid.uuid4().hex
        with transaction(self._conn) as conn:
            if conn.execute("SELECT 1 FROM consultation WHERE id = ?", (consultation_id,)).fetchone() is None:
                raise NotFound(f"no consultation {consultation_id!r}")
            if document_id is not None and conn.execute(
                "SELECT 1 FROM document WHERE id = ? AND consultation_id = ?", (document_id, consultation_id)
            ).fetchone() is None:
                raise NotFound(f"no document {document_id!r} in this consultation")
            # seq keeps the order of messages stored in the same microsecond (under the write lock)
            conn.execute(
                "INSERT INTO chat_message (id, consultation_id, kind, author, text, document_id,"
                " system_key, params, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " (SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_message WHERE consultation_id = ?))",
                (message_id, consultation_id, kind, author, text, document_id, key,
                 json.dumps(params) if params else None, timestamps.to_text(timestamps.utc_now()),
                 consultation_id),
            )
        logger.debug("Consultation(%s) chat message %s (%s) stored", consultation_id, message_id, kind)
        return self.get(message_id)

    def get(self, message_id: str) -> ChatMessage:
        """Return one message; NotFound otherwise."""
        row = self._conn.execute(_SELECT + " WHERE m.id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"no chat message {message_id!r}")
        return _message(row)

    def history(self, consultation_id: str, limit: int) -> list[ChatMessage]:
        """The latest `limit` messages of a consultation, oldest first."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        found = self._conn.execute(
            _SELECT + " WHERE m.consultation_id = ? ORDER BY m.created_at DESC, m.seq DESC LIMIT ?",
            (consultation_id, limit),
        ).fetchall()
        return [_message(row) for row in reversed(found)]

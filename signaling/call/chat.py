"""The chat of a live consultation: validation, rate limit, storage and fan-out to both sides."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from clinic import Clinic, Document, Role
from clinic.chat import ChatMessage

from ..config import Config
from ..errors import ProtocolError

logger = logging.getLogger(__name__)

# control characters other than tab and line feed are dropped from what people type
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_RATE_WINDOW: Final = 60.0


class Member(Protocol):
    """What the chat needs of a participant's connection (hub.Connection has it)."""

    role: Role

    async def send(self, message: dict[str, Any]) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class ChatLimits:
    """The [chat] section, plus the upload limit the page shows before sending a file."""

    max_chars: int = 4000
    max_per_minute: int = 60
    history_limit: int = 500
    max_upload_bytes: int = 104857600

    @classmethod
    def from_config(cls, config: Config) -> ChatLimits:
        return cls(config.chat.max_chars, config.chat.max_per_minute, config.chat.history_limit,
                   config.documents.max_upload_bytes)


def document_json(document: Document) -> dict[str, Any]:
    """A shared file as the browser sees it; `url` is relative to the invitation link plus "/"."""
    return {"id": document.id, "name": document.name, "media_type": document.media_type,
            "size": document.size, "url": f"files/{document.id}"}


def message_json(message: ChatMessage) -> dict[str, Any]:
    """The `chat-message` a stored message becomes (docs/protocol.md)."""
    out: dict[str, Any] = {"type": "chat-message", "id": message.id, "kind": message.kind,
                           "author": message.author, "at": message.created_at}
    if message.kind == "text":
        out["text"] = message.text
    elif message.kind == "file":
        out["document"] = None if message.document is None else document_json(message.document)
    else:
        out["key"] = message.key
        out["params"] = message.params
    return out


def clean_text(text: str, max_chars: int) -> str:
    """What a participant typed, checked: ProtocolError names the problem."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("bad-message", "'chat.text' is not valid Unicode") from None
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not text.strip():
        raise ProtocolError("bad-message", "'chat.text' must not be empty")
    if len(text) > max_chars:
        raise ProtocolError("bad-message", f"'chat.text' is longer than {max_chars} characters")
    return text


class ChatRoom:
    """The chat of one consultation while someone is connected to it (one per Hub)."""

    def __init__(self, consultation_id: str, clinic: Clinic, limits: ChatLimits,
                 members: Callable[[], Iterable[Member]]) -> None:
        self.id = consultation_id
        self.limits = limits
        self._clinic = clinic
        self._members = members
        self._sent: dict[Role, collections.deque[float]] = {role: collections.deque() for role in Role}
        # one message at a time: stored order is the order both sides see
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"ChatRoom({self.id})"

    async def send_history(self, member: Member) -> None:
        """Give a (re)connecting tab the latest messages and the limits it must respect."""
        messages = await self._clinic.chat_history(self.id, limit=self.limits.history_limit)
        await member.send({
            "type": "chat-history",
            "messages": [message_json(m) for m in messages],
            "max_chars": self.limits.max_chars,
            "max_upload_bytes": self.limits.max_upload_bytes,
        })

    async def post_text(self, member: Member, text: str) -> None:
        """A participant wrote something: check it, store it, show it to both sides."""
        text = clean_text(text, self.limits.max_chars)
        self._take_turn(member.role)
        await self._post(member.role.value, "text", text=text)

    async def post_file(self, role: Role, document: Document) -> ChatMessage:
        """A participant shared a file (already stored): show it to both sides."""
        return await self._post(role.value, "file", document_id=document.id)

    async def post_system(self, key: str, params: dict[str, str]) -> ChatMessage:
        """An event ("joined", "left", ...): stored as a key the browser translates."""
        return await self._post("system", "system", key=key, params=params)

    async def _post(self, author: str, kind: str, **fields: Any) -> ChatMessage:
        async with self._lock:
            message = await self._clinic.add_chat_message(self.id, kind, author, **fields)
            wire = message_json(message)
            for member in list(self._members()):
                await member.send(wire)
        logger.info("%r %s message %s from %s", self, kind, message.id, author)
        return message

    def _take_turn(self, role: Role) -> None:
        now = time.monotonic()
        sent = self._sent[role]
        while sent and now - sent[0] >= _RATE_WINDOW:
            sent.popleft()
        if len(sent) >= self.limits.max_per_minute:
            raise ProtocolError(
                "rate-limited", f"at most {self.limits.max_per_minute} chat messages a minute; wait a moment"
            )
        sent.append(now)

"""Invitation tokens: generated here, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

#: Longest token we even try to look up; ours are 43 characters.
MAX_TOKEN_LENGTH: Final = 200

_URLSAFE: Final = re.compile(r"[A-Za-z0-9_-]+")


def new_token() -> str:
    """Return a fresh, unguessable, URL-safe token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the hex SHA-256 of a token, the only form that is stored."""
    # a plain hash suffices: tokens carry 256 bits of entropy, unlike passwords
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def is_well_formed(token: str) -> bool:
    """Tell whether `token` could be one of ours (length and alphabet)."""
    return 0 < len(token) <= MAX_TOKEN_LENGTH and _URLSAFE.fullmatch(token) is not None

"""Password hashing with argon2id; slow on purpose, so only call it off the event loop."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hashes and checks practitioner passwords (argon2id, library defaults)."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        """Use `hasher`, or argon2-cffi's default argon2id parameters."""
        self._hasher = hasher or argon2.PasswordHasher()
        self._decoy: str | None = None

    def hash(self, password: str) -> str:
        """Return the encoded argon2id hash of `password`."""
        if not password:
            raise ValueError("password must not be empty")
        return self._hasher.hash(password)

    def verify(self, encoded: str, password: str) -> bool:
        """Tell whether `password` matches the stored hash `encoded`."""
        try:
            return self._hasher.verify(encoded, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Tell whether `encoded` was made with weaker parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    def waste_time(self, password: str) -> None:
        """Verify against a decoy hash so unknown emails cost as much as known ones."""
        if self._decoy is None:
            self._decoy = self._hasher.hash("decoy password, never matches")
        self.verify(self._decoy, password)

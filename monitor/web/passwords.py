"""Password hashing (argon2id) and API tokens for the web UI's users.

Hashing and checking are CPU-heavy on purpose (tens of milliseconds): the web app runs
them on its own small pool (`monitor.web.executors`), never on the threads database work
uses. API tokens are 32 random bytes; only their sha256 is
stored (a token has far more entropy than a password, so a fast hash is enough).
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_CHARS = 10
TOKEN_PREFIX = "sw_"


class Passwords:
    """Hashes and checks passwords; ``hasher`` may be a cheaper one in tests."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Checked against when the email is unknown, so both cases take the same time.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """The argon2id hash of a password; ``ValueError`` for one too short."""
        if len(password) < MIN_PASSWORD_CHARS:
            raise ValueError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; a missing hash costs as much as a wrong one."""
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False


def new_token() -> str:
    """A fresh API token (shown once to its owner)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

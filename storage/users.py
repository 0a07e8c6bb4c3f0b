"""Users of the web UI and their API tokens.

Passwords arrive already hashed (argon2, by the caller) and tokens as their sha256: this
module never sees a secret. Emails are stored trimmed and lower-cased.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast, get_args

from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select, update

from detectors.errors import InputError
from storage import artists
from storage.models import ApiToken, FindingLease, TriageEvent, User, WebSession
from storage.records import Role
from storage.transactions import Transactions, utc_now


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the web UI sees it; ``artist_id`` links an artist user to their artist."""

    id: int
    email: str
    role: Role
    artist_id: int | None
    created_at: datetime


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _record(user: User) -> UserRecord:
    assert user.id is not None, "flushed rows have ids"
    return UserRecord(
        id=user.id,
        email=user.email,
        role=cast(Role, user.role),
        artist_id=user.artist_id,
        created_at=user.created_at,
    )


class UserStore:
    """Users and tokens over one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._tx = Transactions(engine, clock)

    def add_user(
        self, email: str, role: Role, password_hash: str, artist: str | None = None
    ) -> UserRecord:
        """Create a user. ``InputError`` for a bad role, a taken email, an unknown artist,
        or an artist user without an artist."""
        email = normalize_email(email)
        _check_new_user(email, role, artist)

        def work(session: Session) -> UserRecord:
            if _by_email(session, email) is not None:
                raise InputError(f"a user with email {email!r} already exists")
            artist_id = artists.find_artist(session, artist).id if artist else None
            user = User(
                email=email,
                role=role,
                password_hash=password_hash,
                artist_id=artist_id,
                created_at=self._tx.clock(),
            )
            session.add(user)
            session.flush()
            return _record(user)

        return self._tx.write("add_user", work)

    def get_user(self, user_id: int) -> UserRecord | None:
        def work(session: Session) -> UserRecord | None:
            user = session.get(User, user_id)
            return None if user is None else _record(user)

        return self._tx.read("get_user", work)

    def credentials(self, email: str) -> tuple[UserRecord, str] | None:
        """The user with this email and their password hash, or None."""

        def work(session: Session) -> tuple[UserRecord, str] | None:
            user = _by_email(session, normalize_email(email))
            return None if user is None else (_record(user), user.password_hash)

        return self._tx.read("credentials", work)

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        def work(session: Session) -> None:
            user = session.get(User, user_id)
            if user is not None:
                user.password_hash = password_hash
                session.add(user)
                # a new password signs the user out everywhere
                session.exec(delete(WebSession).where(col(WebSession.user_id) == user_id))

        self._tx.write("set_password_hash", work)

    def change_password(self, email: str, password_hash: str) -> UserRecord:
        """Set the password of the user with this email; every session of theirs ends."""

        def work(session: Session) -> UserRecord:
            user = _existing(session, email)
            user.password_hash = password_hash
            session.add(user)
            _end_sessions(session, _record(user).id)
            return _record(user)

        return self._tx.write("change_password", work)

    def remove_user(self, email: str) -> tuple[UserRecord, int]:
        """Remove the user with this email, their sessions, tokens and claims (their triage
        entries stay, unattributed); the user and how many API tokens went with them."""

        def work(session: Session) -> tuple[UserRecord, int]:
            user = _existing(session, email)
            record = _record(user)
            # Explicit deletes: SQLite enforces ON DELETE only with its foreign_keys pragma.
            _end_sessions(session, record.id)
            tokens = session.exec(delete(ApiToken).where(col(ApiToken.user_id) == record.id))
            session.exec(delete(FindingLease).where(col(FindingLease.user_id) == record.id))
            session.exec(
                update(TriageEvent)
                .where(col(TriageEvent.user_id) == record.id)
                .values(user_id=None)
            )
            session.delete(user)
            return record, tokens.rowcount

        return self._tx.write("remove_user", work)

    def start_session(self, user_id: int, sid_sha256: str, max_age_s: int) -> None:
        """Record a new web session (and drop every session that has expired)."""

        def work(session: Session) -> None:
            now = self._tx.clock()
            session.exec(delete(WebSession).where(col(WebSession.expires_at) <= now))
            expires_at = now + timedelta(seconds=max_age_s)
            session.add(
                WebSession(
                    sid_sha256=sid_sha256, user_id=user_id, created_at=now, expires_at=expires_at
                )
            )

        self._tx.write("start_session", work)

    def session_user(self, sid_sha256: str) -> UserRecord | None:
        """The user of a live session, or None (ended, expired or never started)."""

        def work(session: Session) -> UserRecord | None:
            row = session.get(WebSession, sid_sha256)
            if row is None or row.expires_at <= self._tx.clock():
                return None
            user = session.get(User, row.user_id)
            return None if user is None else _record(user)

        return self._tx.read("session_user", work)

    def end_session(self, sid_sha256: str) -> None:
        def work(session: Session) -> None:
            session.exec(delete(WebSession).where(col(WebSession.sid_sha256) == sid_sha256))

        self._tx.write("end_session", work)

    def list_users(self) -> list[UserRecord]:
        def work(session: Session) -> list[UserRecord]:
            return [_record(u) for u in session.exec(select(User).order_by(col(User.id))).all()]

        return self._tx.read("list_users", work)

    def add_token(self, email: str, name: str, token_sha256: str) -> UserRecord:
        """Store a token (by its sha256) for the user with this email."""

        def work(session: Session) -> UserRecord:
            user = _by_email(session, normalize_email(email))
            if user is None:
                raise InputError(f"no user with email {email!r}; add it with `stylewatch user add`")
            token = ApiToken(
                user_id=_record(user).id,
                name=artists.clean(name, "token name"),
                token_sha256=token_sha256,
                created_at=self._tx.clock(),
            )
            session.add(token)
            session.flush()
            return _record(user)

        return self._tx.write("add_token", work)

    def user_for_token(self, token_sha256: str) -> UserRecord | None:
        """The owner of a token (and its last use is noted), or None for an unknown one."""

        def work(session: Session) -> UserRecord | None:
            token = session.exec(
                select(ApiToken).where(ApiToken.token_sha256 == token_sha256)
            ).first()
            user = None if token is None else session.get(User, token.user_id)
            if token is None or user is None:
                return None
            token.last_used_at = self._tx.clock()
            session.add(token)
            return _record(user)

        return self._tx.write("user_for_token", work)


def _check_new_user(email: str, role: str, artist: str | None) -> None:
    if role not in get_args(Role):
        raise InputError(f"unknown role {role!r}: choose admin, moderator or artist")
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise InputError(f"{email!r} is not an email address")
    if role == "artist" and not artist:
        raise InputError("an artist user needs --artist NAME (register it with `artist add`)")


def _by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email)).first()


def _existing(session: Session, email: str) -> User:
    user = _by_email(session, normalize_email(email))
    if user is None:
        raise InputError(f"no user with email {email!r}: see `stylewatch user list`")
    return user


def _end_sessions(session: Session, user_id: int) -> None:
    session.exec(delete(WebSession).where(col(WebSession.user_id) == user_id))

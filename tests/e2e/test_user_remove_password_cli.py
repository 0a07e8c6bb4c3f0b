"""``stylewatch user password`` and ``stylewatch user remove`` in a subprocess: both end
the user's sessions server-side (#20)."""

from __future__ import annotations

from pathlib import Path

from monitor.runtime import open_runtime
from monitor.settings import load_settings
from monitor.web.passwords import Passwords, token_sha256
from storage.users import UserStore
from tests.e2e.test_web_users_cli import run


def _user_with_session(tmp_path: Path) -> tuple[str, str]:
    added = run(
        tmp_path,
        "user",
        "add",
        "mod@example.org",
        "--role",
        "moderator",
        "--password-stdin",
        stdin="a long passphrase\n",
    )
    assert added.returncode == 0, added.stderr
    token = run(tmp_path, "user", "token", "mod@example.org").stdout.strip()
    runtime = open_runtime(load_settings(None, data_dir=tmp_path))
    try:
        users = UserStore(runtime.engine)
        user, _ = users.credentials("mod@example.org") or (None, "")
        assert user is not None
        users.start_session(user.id, "a" * 64, 3600)
        assert users.session_user("a" * 64) == user
    finally:
        runtime.close()
    return "a" * 64, token


def test_password_change_signs_the_user_out(tmp_path):
    sid, _ = _user_with_session(tmp_path)
    changed = run(
        tmp_path,
        "user",
        "password",
        "MOD@example.org",
        "--password-stdin",
        stdin="a new passphrase\n",
    )
    assert changed.returncode == 0, changed.stderr
    assert "password changed for mod@example.org" in changed.stdout
    runtime = open_runtime(load_settings(None, data_dir=tmp_path))
    try:
        users = UserStore(runtime.engine)
        assert users.session_user(sid) is None
        _, stored = users.credentials("mod@example.org") or (None, "")
        assert Passwords().verify(stored, "a new passphrase")
        assert not Passwords().verify(stored, "a long passphrase")
    finally:
        runtime.close()


def test_remove_asks_then_ends_sessions_and_tokens(tmp_path):
    sid, token = _user_with_session(tmp_path)
    asked = run(tmp_path, "user", "remove", "mod@example.org")
    assert asked.returncode == 2 and "nothing removed" in asked.stderr
    removed = run(tmp_path, "user", "remove", "mod@example.org", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "removed mod@example.org, 1 API token" in removed.stdout
    runtime = open_runtime(load_settings(None, data_dir=tmp_path))
    try:
        users = UserStore(runtime.engine)
        assert users.session_user(sid) is None
        assert users.user_for_token(token_sha256(token)) is None
        assert users.list_users() == []
    finally:
        runtime.close()


def test_unknown_users_are_one_error_line(tmp_path):
    for args in (
        ("remove", "nobody@example.org", "--yes"),
        ("password", "nobody@example.org", "--password-stdin"),
    ):
        result = run(tmp_path, "user", *args, stdin="a long passphrase\n")
        (line,) = result.stderr.strip().splitlines()
        assert result.returncode == 2 and line.startswith("error: no user with email")

"""``stylewatch user add`` and ``stylewatch user token`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from monitor.runtime import open_runtime
from monitor.settings import load_settings
from monitor.web.passwords import Passwords, token_sha256
from storage.users import UserStore

BIN = Path(sys.executable).parent / "stylewatch"


def run(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env["STYLEWATCH_DATA_DIR"] = str(tmp_path)
    return subprocess.run(
        [str(BIN), *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_user_add_and_token(tmp_path):
    runtime = open_runtime(load_settings(None, data_dir=tmp_path))
    runtime.store.add_artist("Mira Okafor")
    runtime.close()
    added = run(
        tmp_path,
        "user",
        "add",
        "mira@example.org",
        "--role",
        "artist",
        "--artist",
        "Mira Okafor",
        "--password-stdin",
        stdin="a long passphrase\n",
    )
    assert added.returncode == 0, added.stderr
    token = run(tmp_path, "user", "token", "mira@example.org", "--name", "ci")
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip()
    assert secret.startswith("sw_")
    runtime = open_runtime(load_settings(None, data_dir=tmp_path))
    try:
        users = UserStore(runtime.engine)
        user, stored = users.credentials("mira@example.org") or (None, "")
        assert user is not None
        assert user.role == "artist"
        assert stored.startswith("$argon2id$")
        assert Passwords().verify(stored, "a long passphrase")
        assert users.user_for_token(token_sha256(secret)) == user
    finally:
        runtime.close()


def test_user_add_refuses_bad_input_in_one_line(tmp_path):
    for args, stdin in (
        (("user", "add", "x@example.org", "--role", "artist", "--password-stdin"), "long pw 123\n"),
    ):
        result = run(tmp_path, *args, stdin=stdin)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip().startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr

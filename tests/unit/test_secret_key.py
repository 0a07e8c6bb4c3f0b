from __future__ import annotations

import stat

from monitor.secret_key import web_secret_key
from monitor.settings import load_settings


def test_generated_once_and_kept_private(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    first = web_secret_key(settings)
    assert len(first) == 32
    assert web_secret_key(settings) == first
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    other = web_secret_key(load_settings(data_dir=tmp_path / "other"))
    assert other != first


def test_configured_key_wins(tmp_path):
    a = web_secret_key(load_settings(data_dir=tmp_path, web={"secret_key": "one"}))
    b = web_secret_key(load_settings(data_dir=tmp_path, web={"secret_key": "two"}))
    assert a != b
    assert len(a) == 32
    assert not (tmp_path / "secret_key").exists()

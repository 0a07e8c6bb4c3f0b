from __future__ import annotations

import re
from pathlib import Path

import pytest

from detectors.errors import ConfigError
from monitor.settings import default_data_dir, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_file(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'stylewatch.db'}"
    assert settings.is_embedded
    assert (settings.web.host, settings.web.port) == ("127.0.0.1", 8787)
    assert settings.style.embedder == "style"


def test_default_data_dir_is_the_users(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "stylewatch"
    assert load_settings().data_dir == tmp_path / "stylewatch"


def test_env_overrides_toml_per_key(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[sources.civitai]\nbase_url = "http://from-file"\ninterval = 120\n[web]\nport = 9000\n'
    )
    monkeypatch.setenv("STYLEWATCH_SOURCES__CIVITAI__BASE_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("STYLEWATCH_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings(cfg)
    assert settings.sources.civitai.base_url == "http://127.0.0.1:9000"
    assert settings.sources.civitai.interval == 120  # the file's other keys survive
    assert settings.web.port == 9000
    assert settings.data_dir == tmp_path / "d"


def test_secrets_stay_masked(monkeypatch):
    monkeypatch.setenv("STYLEWATCH_SOURCES__HUGGINGFACE__TOKEN", "hf_supersecret")
    settings = load_settings()
    token = settings.sources.huggingface.token
    assert token is not None
    assert token.get_secret_value() == "hf_supersecret"
    assert "hf_supersecret" not in repr(settings)
    assert "hf_supersecret" not in str(settings)


def test_one_line_per_bad_key(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sources.civitai]\ninterval = "often"\ntypo = 1\n[web]\nport = 70000\n')
    monkeypatch.setenv("STYLEWATCH_SOURCES__CIVITAI__API_KEY", "sekrit")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    problems = info.value.problems
    assert len(problems) == 3
    assert any(p.startswith("sources.civitai.interval:") and "'often'" in p for p in problems)
    assert any(p == "sources.civitai.typo: unknown key (got 1)" for p in problems)
    assert any(p.startswith("web.port:") and "70000" in p for p in problems)
    assert all("\n" not in p for p in problems)


def test_bad_secret_value_is_not_echoed(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[web]\nsecret_key = ["my", "secret"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert "secret" in info.value.problems[0]
    assert "my" not in info.value.problems[0].split(":", 1)[1]


def test_procrastinate_needs_postgres():
    with pytest.raises(ConfigError, match="needs a postgresql"):
        load_settings(queue={"backend": "procrastinate"})
    settings = load_settings(
        queue={"backend": "procrastinate"},
        database={"url": "postgresql+psycopg://u@localhost/db"},
    )
    assert not settings.is_embedded


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[web\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_example_config_names_only_real_keys(tmp_path):
    """Uncommenting every `# key = value` line of config.example.toml gives a valid config."""
    lines = []
    for line in (ROOT / "config.example.toml").read_text().splitlines():
        m = re.match(r"^# ([a-z_]+ = .*?)(\s+#.*)?$", line)
        if m and "…" not in m.group(1):
            lines.append(m.group(1))
        elif line.startswith("["):
            lines.append(line)
        elif line.startswith("# [["):
            lines.append(line[2:])
    text = "\n".join(lines).replace('"/srv/incoming-models"', f'"{tmp_path}"')
    cfg = tmp_path / "all.toml"
    cfg.write_text(text)
    settings = load_settings(cfg)
    assert settings.data_dir == Path("/var/lib/stylewatch")
    assert settings.sources.folder.enabled is False
    assert settings.probe.base_models["sdxl"] == Path("/models/sdxl-base-1.0")
    assert settings.web.base_url == "https://stylewatch.example.org"
    assert settings.alerts.webhooks[0].format == "standard"

"""The config file is outside input: any bytes give Settings or one ConfigError whose problems
are one line each (naming the key, never a secret's value), and values written as TOML load
back the same. Keys are drawn from Settings itself, so new sections are fuzzed too."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from bench.fuzz_mutators import Mutator
from bench.fuzz_seeds import config_seeds
from detectors.errors import ConfigError
from monitor.settings import Settings, load_settings

SECRET_KEYS = ("api_key", "token", "password", "secret")


def _schema(model: type[BaseModel], prefix: str = "") -> dict[str, list[str]]:
    """Section path ("" for top level, "sources.civitai", …) -> the keys it takes."""
    sections: dict[str, list[str]] = {prefix: []}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            sections |= _schema(kind, f"{prefix}.{name}".lstrip("."))
        else:
            sections[prefix].append(name)
    return sections


SCHEMA = _schema(Settings)
toml_scalars = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.text(st.characters(codec="utf-8"), max_size=30)
    | st.from_regex(r"sekrit-[0-9a-f]{12}", fullmatch=True)
)
toml_values = toml_scalars | st.lists(toml_scalars, max_size=3)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # ints, floats and basic strings alike; JSON leaves DEL raw, which TOML refuses in strings
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml(doc: dict[str, dict[str, Any]]) -> bytes:
    lines = [f"{key} = {_toml_value(value)}" for key, value in doc.get("", {}).items()]
    for section, table in doc.items():
        if section:
            lines.append(f"[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines).encode()


@st.composite
def config_documents(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Sections of Settings (and a stranger) with real and unknown keys, any values."""
    doc: dict[str, dict[str, Any]] = {}
    for section in draw(st.lists(st.sampled_from([*SCHEMA, "bogus"]), max_size=4, unique=True)):
        keys = [*SCHEMA.get(section, []), "bogus_key"]
        doc[section] = draw(st.dictionaries(st.sampled_from(keys), toml_values, max_size=4))
    return doc


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config") / "stylewatch.toml"


def _settings_or_problems(path: Path, data: bytes) -> list[str]:
    """The problems load_settings reports for a file holding ``data`` (none: it loaded)."""
    path.write_bytes(data)
    problems: list[str] = []
    try:
        load_settings(path)
    except ConfigError as exc:
        problems = exc.problems or ["(a ConfigError without problems)"]
    for line in problems:
        assert line and "\n" not in line
        assert line != "(a ConfigError without problems)"
    return problems


@settings(max_examples=100, deadline=None)
@given(doc=config_documents())
def test_drawn_configs_give_settings_or_one_line_per_problem(config_path, doc):
    problems = _settings_or_problems(config_path, _toml(doc))
    values = [(key, value) for table in doc.values() for key, value in table.items()]
    elsewhere = " ".join(repr(value) for key, value in values if key not in SECRET_KEYS)
    secrets = [
        value
        for key, value in values
        if key in SECRET_KEYS
        and isinstance(value, str)
        and value.startswith("sekrit-")
        and value not in elsewhere  # the same text under another key is no secret there
    ]
    for line in problems:
        assert not any(secret in line for secret in secrets)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_give_settings_or_config_error(config_path, data):
    _settings_or_problems(config_path, data)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_configs_give_settings_or_config_error(config_path, seed):
    seeds = config_seeds()
    rng = random.Random(seed)
    _settings_or_problems(
        config_path, Mutator("toml", seeds, 64 * 1024).mutate(rng.choice(seeds), rng)
    )


@settings(max_examples=40, deadline=None)
@given(
    interval=st.integers(30, 10**9),
    enabled=st.booleans(),
    threshold=st.floats(0.0, 1.0),
    max_images=st.integers(1, 64),
    hour=st.integers(0, 23),
)
def test_valid_values_load_back_the_same(
    config_path, interval, enabled, threshold, max_images, hour
):
    doc = {
        "sources.civitai": {"interval": interval, "enabled": enabled},
        "screening": {"flag_threshold": threshold},
        "probe": {"max_images": max_images},
        "digest": {"hour": hour},
    }
    config_path.write_bytes(_toml(doc))
    loaded = load_settings(config_path)
    assert loaded.sources.civitai.interval == interval
    assert loaded.sources.civitai.enabled is enabled
    assert loaded.screening.flag_threshold == threshold
    assert loaded.probe.max_images == max_images
    assert loaded.digest.hour == hour


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'data_dir = "/tmp/\xff"\n', "is not UTF-8 text (byte 17)"),
        (b"x = " + b"[" * 1200 + b"]" * 1200, "nests arrays or tables too deeply"),
        (b"x = " + b"{a = " * 1200, "nests arrays or tables too deeply"),
        (b"[probe]\nmax_images = " + b"1" * 4400, "holds an integer too long to read"),
    ],
)
def test_hostile_config_files_are_one_config_error(config_path, data, says):
    problems = _settings_or_problems(config_path, data)
    assert len(problems) == 1
    assert problems[0].startswith(f"config file {config_path} ")
    assert says in problems[0]


@settings(max_examples=30, deadline=None)
@given(
    secret=st.from_regex(r"sekrit-[0-9a-f]{12}", fullmatch=True),
    bad=toml_values.filter(lambda value: "sekrit-" not in repr(value)),
)
def test_a_secret_never_shows_in_a_problem(config_path, secret, bad):
    sections = {s: keys for s, keys in SCHEMA.items() if set(keys) & set(SECRET_KEYS)}
    assert sections  # sources.civitai.api_key, email password, …
    doc = {
        section: {next(k for k in keys if k in SECRET_KEYS): secret, "bogus_key": bad}
        for section, keys in sections.items()
    }
    problems = _settings_or_problems(config_path, _toml(doc))
    assert any("bogus_key: unknown key" in line for line in problems)
    assert not any(secret in line for line in problems)

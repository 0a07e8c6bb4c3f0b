"""``[probe]`` drawing settings reach the probe: steps, guidance, size, batch and the lift
threshold, and a change to how images are drawn changes the base cache's key."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.errors import ConfigError
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from monitor.build.probe import build_prober
from monitor.runtime import open_runtime
from monitor.settings import load_settings


def _config(tmp_path: Path, body: str) -> Path:
    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    (base / "model_index.json").write_text("{}")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[probe]\ndevice = "cpu"\nbase_models = {{ sd1 = "{base}" }}\n{body}')
    return cfg


def test_probe_settings_reach_the_backend_and_the_scorer(tmp_path):
    cfg = _config(
        tmp_path,
        "steps = 3\nguidance_scale = 2.5\nsize_px = 32\nbatch_images = 2\nlift_threshold = 0.25\n",
    )
    runtime = open_runtime(load_settings(cfg, data_dir=tmp_path / "d"))
    prober = build_prober(runtime)
    backend = prober.backend
    assert isinstance(backend, DiffusersProbe)
    assert backend.generation == GenerationSettings(
        steps=3, guidance_scale=2.5, size_px=32, batch_images=2
    )
    assert prober.lift_threshold == 0.25


def test_changing_the_steps_changes_the_base_cache_key(tmp_path):
    keys = []
    for steps in (3, 4):
        cfg = _config(tmp_path, f"steps = {steps}\n")
        runtime = open_runtime(load_settings(cfg, data_dir=tmp_path / f"d{steps}"))
        keys.append(build_prober(runtime).backend.settings_key("sd1"))
    assert keys[0] != keys[1]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("size_px = 30", "probe.size_px"),
        ("steps = 0", "probe.steps"),
        ("lift_threshold = -1", "probe.lift_threshold"),
    ],
)
def test_bad_probe_values_are_one_line_each(tmp_path, line, key):
    with pytest.raises(ConfigError) as err:
        load_settings(_config(tmp_path, line + "\n"), data_dir=tmp_path / "d")
    assert str(err.value).startswith(f"{key}:")
    assert "\n" not in str(err.value)

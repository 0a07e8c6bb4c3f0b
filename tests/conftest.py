"""Test-wide fixtures: a clean environment for every test."""

from __future__ import annotations

import os

import pytest

_SECRET_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "CIVITAI_API_KEY", "CIVITAI_TOKEN")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's STYLEWATCH_* settings or hub tokens."""
    for key in list(os.environ):
        if key.startswith("STYLEWATCH_") or key in _SECRET_VARS:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# The tiny diffusion model and LoRAs the probe tests share (built once, on first use), and
# the S3 server the blob store tests share (started once, on first use).
pytest_plugins = ["tests.probe_fixtures", "tests.s3_fixtures"]

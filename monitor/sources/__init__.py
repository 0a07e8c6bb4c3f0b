"""monitor.sources: where uploads come from."""

from __future__ import annotations

SOURCE_NAMES = ("civitai", "huggingface", "folder")  # the ``[sources]`` a config can enable

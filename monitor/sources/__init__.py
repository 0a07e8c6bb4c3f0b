"""monitor.sources: where uploads come from: the `Source` port (`base`) and its hubs
(`civitai`, `huggingface`, a `folder`), the HTTP plumbing they share (`http`), model files
on the local disk (`local_files`), the one header-read loop of both (`headers`) and the hub
targets of ``stylewatch scan`` (`targets`)."""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "SOURCE_NAMES",
    "base",
    "civitai",
    "folder",
    "headers",
    "html_text",
    "http",
    "hub_json",
    "huggingface",
    "local_files",
    "targets",
]

SOURCE_NAMES = ("civitai", "huggingface", "folder")  # the ``[sources]`` a config can enable

"""Hub targets of ``stylewatch scan``: ``hf:owner/repo[/file]``, ``civitai:<versionId>`` or
a pasted Civitai / Hugging Face URL (parsing only; ``monitor.cli.hub_scan`` scans them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from yarl import URL

from detectors.errors import InputError
from monitor.settings import Settings

_HF_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True, slots=True)
class HubTarget:
    """One upload on a hub. For Civitai either ``upload_id`` (a version id) or ``model_id``
    is set; ``file`` narrows a Hugging Face repo to one file."""

    source: str
    upload_id: str | None
    file: str | None = None
    model_id: str | None = None


def parse_hub_target(target: str, settings: Settings) -> HubTarget | None:
    """The hub upload ``target`` names, None when it is not a hub target (a local path).

    Raises InputError for a hub target that is malformed.
    """
    if target.startswith("hf:"):
        return _hf_path(target[3:], target)
    if target.startswith("civitai:"):
        version = target.removeprefix("civitai:")
        if not version.isdigit():
            raise InputError(f"{target}: use civitai:<versionId>, e.g. civitai:3219871")
        return HubTarget("civitai", version)
    if not target.startswith(("http://", "https://")):
        return None
    try:
        url = URL(target)
    except ValueError as exc:  # a bad port, IPv6 literal or host name (UnicodeError too)
        raise InputError(f"{target}: not a valid URL ({exc})") from exc
    if _same_host(url, settings.sources.civitai.base_url) or url.host == "civitai.com":
        return _civitai_url(url, target)
    if _same_host(url, settings.sources.huggingface.endpoint) or url.host == "huggingface.co":
        return _hf_path(url.path.strip("/"), target)
    raise InputError(f"{target}: not a Civitai or Hugging Face URL")


def _same_host(url: URL, base: str) -> bool:
    other = URL(base)
    return (url.host, url.port) == (other.host, other.port)


def _hf_path(path: str, target: str) -> HubTarget:
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or not _HF_REPO.match(f"{parts[0]}/{parts[1]}"):
        raise InputError(f"{target}: use hf:owner/repo or hf:owner/repo/file.safetensors")
    rest = parts[2:]
    if rest[:1] in (["blob"], ["resolve"]) and len(rest) >= 3:
        rest = rest[2:]  # blob/<revision>/<file>
    elif rest[:1] == ["tree"]:
        rest = []
    return HubTarget("huggingface", f"{parts[0]}/{parts[1]}", "/".join(rest) or None)


def _civitai_url(url: URL, target: str) -> HubTarget:
    version = url.query.get("modelVersionId")
    parts = [p for p in url.path.split("/") if p]
    if version is None and parts[:3] == ["api", "download", "models"] and len(parts) > 3:
        version = parts[3]
    if version is None and parts[:3] == ["api", "v1", "model-versions"] and len(parts) > 3:
        version = parts[3]
    if version is not None and version.isdigit():
        return HubTarget("civitai", version)
    if len(parts) >= 2 and parts[0] == "models" and parts[1].isdigit():
        return HubTarget("civitai", None, model_id=parts[1])
    raise InputError(f"{target}: paste a Civitai model URL or use civitai:<versionId>")

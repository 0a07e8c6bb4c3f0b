"""Building the hub side from the settings: the process's one HTTP session, the concrete
sources of the enabled ``[sources]`` sections, and a Poller per source."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from detectors.errors import ConfigError
from monitor.pipeline.poll import PollCounters, Poller
from monitor.runtime import Runtime
from monitor.settings import Settings
from monitor.sources import SOURCE_NAMES
from monitor.sources.base import Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.folder import FolderSource
from monitor.sources.http import HttpClient
from monitor.sources.huggingface import HuggingFaceSource
from storage.source_state import SourceState

CONNECTIONS_PER_PROCESS = 32


def create_session() -> aiohttp.ClientSession:
    """The process's one HTTP session (the caller owns it and closes it)."""
    connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_PROCESS, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False)


def build_sources(
    settings: Settings, http: HttpClient, names: Sequence[str] | None = None
) -> list[Source]:
    """The enabled sources, or exactly ``names`` (enabled or not). Raises ConfigError for
    an unknown name or a folder source without a path."""
    unknown = sorted(set(names or ()) - set(SOURCE_NAMES))
    if unknown:
        choices = ", ".join(SOURCE_NAMES)
        raise ConfigError([f"--source: unknown source {unknown[0]!r} (choose from {choices})"])
    config = settings.sources
    wanted = set(names) if names else {n for n in SOURCE_NAMES if _enabled(settings, n)}
    sources: list[Source] = []
    if "civitai" in wanted:
        sources.append(CivitaiSource(config.civitai, http))
    if "huggingface" in wanted:
        sources.append(HuggingFaceSource(config.huggingface, http))
    if "folder" in wanted:
        if config.folder.path is None:
            raise ConfigError(["sources.folder.path: set it to watch a folder"])
        sources.append(FolderSource(config.folder))
    return sources


def build_pollers(
    runtime: Runtime, sources: Sequence[Source], counters: PollCounters | None = None
) -> dict[str, Poller]:
    counters = counters or PollCounters()
    state = SourceState(runtime.engine)
    threshold = runtime.settings.screening.flag_threshold
    budget = runtime.settings.sources.max_bytes_per_upload
    return {
        s.name: Poller(
            s,
            runtime.store,
            state,
            threshold=threshold,
            counters=counters,
            max_bytes_per_upload=budget,
        )
        for s in sources
    }


def _enabled(settings: Settings, name: str) -> bool:
    enabled: bool = getattr(settings.sources, name).enabled
    return enabled

"""Building the hub history search and the takedown checker from the settings, and their
slow jobs in ``serve``'s scheduler: a sweep that starts or finishes the hub searches of
artists registered (or given aliases) anywhere, the portal included, and the takedown
checks. Both jobs read their work from the database, so a restart repeats nothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from monitor.backscan.hub_history import HubHistory
from monitor.pipeline.poll import Poller
from monitor.pipeline.takedown import TakedownChecker
from monitor.runtime import Runtime
from monitor.sources.base import CheckableSource, SearchableSource, Source
from storage.hub_searches import HubSearches
from storage.source_state import SourceState
from storage.takedowns import Takedowns

log = logging.getLogger(__name__)


def build_history(runtime: Runtime, sources: Sequence[Source]) -> HubHistory | None:
    """The hub history search over the searchable ones of ``sources`` (None: none is)."""
    searchable = [s for s in sources if isinstance(s, SearchableSource)]
    if not searchable:
        return None
    state = SourceState(runtime.engine)
    threshold = runtime.settings.screening.flag_threshold
    budget = runtime.settings.sources.max_bytes_per_upload
    pollers = {
        s.name: Poller(
            s,
            runtime.store,
            state,
            threshold=threshold,
            history=True,
            max_bytes_per_upload=budget,
        )
        for s in searchable
    }
    return HubHistory(
        searchable,
        pollers,
        HubSearches(runtime.engine),
        max_pages=runtime.settings.hub_history.max_pages,
    )


def build_checker(runtime: Runtime, sources: Sequence[Source]) -> TakedownChecker:
    checkable = {s.name: s for s in sources if isinstance(s, CheckableSource)}
    return TakedownChecker(
        checkable, Takedowns(runtime.engine), interval_s=runtime.settings.takedown.interval
    )

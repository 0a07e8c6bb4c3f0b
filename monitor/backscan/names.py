"""Back-scan: when artists are registered (or gain aliases), screen every upload already
recorded for them, from stored metadata and hub text only (nothing is fetched again).

The index holds only the artists being back-scanned, so the pass over a large database costs
about one cheap automaton run per upload; an upload that names one of them gets its findings
recorded with ``backscan`` set. Running it again adds nothing: findings are keyed by (upload,
artist).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from detectors.names import ArtistIndex
from detectors.rescreen import might_name, rescreen
from detectors.results import ArtistMatch, ArtistRef
from storage.backscan_reads import BackscanReads, StoredUpload
from storage.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackscanResult:
    """How many uploads were screened again, and per artist name how many of them name it."""

    scanned: int
    named: Mapping[str, int]

    def summary(self, artists: Sequence[ArtistRef]) -> list[str]:
        """One line per artist: ``back-scan: 2 earlier uploads name Mara Quellbrook``."""
        lines = []
        for artist in artists:
            count = self.named.get(artist.name, 0)
            what = "earlier upload names" if count == 1 else "earlier uploads name"
            lines.append(f"back-scan: {count or 'no'} {what} {artist.name}")
        return lines


def backscan(
    store: Store,
    recorded: BackscanReads,
    artists: Sequence[ArtistRef],
    *,
    advance: Callable[[int], None] | None = None,
) -> BackscanResult:
    """Screen every recorded upload for ``artists`` and record what names them.

    ``advance`` is called with the size of each batch screened (a progress bar's step).
    Raises ``StorageError`` when the database fails.
    """
    if not artists:
        return BackscanResult(0, {})
    index = ArtistIndex.build(artists)
    named: Counter[str] = Counter()
    scanned = 0
    for batch in recorded.batches():
        found = [(u.upload_pk, _matches(index, u)) for u in batch if might_name(index, u.text)]
        found = [(upload_pk, matches) for upload_pk, matches in found if matches]
        if found:
            store.record_many_findings(found, backscan=True)
        for upload_pk, matches in found:
            names = sorted({m.artist for m in matches})
            named.update(names)
            log.info(
                "backscan.upload.flagged",
                extra={"upload_pk": upload_pk, "artist": ", ".join(names), "stage": "backscan"},
            )
        scanned += len(batch)
        if advance is not None:
            advance(len(batch))
    return BackscanResult(scanned, dict(named))


def _matches(index: ArtistIndex, upload: StoredUpload) -> list[ArtistMatch]:
    return rescreen(index, upload.groups())

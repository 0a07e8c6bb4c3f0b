"""monitor.backscan: screening what is already recorded again, when an artist is registered
or gains aliases or reference images.

- `names`: every recorded upload's stored text screened again for the artists' names;
- `style`: the LoRAs probed earlier scored again from their kept probe runs (the pure numpy
  pre-filter is `detectors.probe.rescore`), those without one put back in the probe's queue;
- `service`: the back-scans the web UI starts, run in the background of serve;
- `hub_history`: what the hubs already hold for an artist, found by searching them.

What they read is `storage.backscan_reads.BackscanReads`.
"""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "hub_history",
    "names",
    "service",
    "style",
]

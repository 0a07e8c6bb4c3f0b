"""monitor.build: construction from the settings, ``build_*``: the HTTP session, sources and
pollers (`sources`), the prober (`probe`), the hub history search and takedown checker
(`hubs`), the alert links, channels, dispatcher and digest builder (`alerts`).

Nothing here runs for long: `monitor.services` runs what is built here."""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "alerts",
    "hubs",
    "probe",
    "sources",
]

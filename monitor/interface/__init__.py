"""monitor.interface: what people read, shared by the CLI and the web UI: the JSON shapes of
docs/interface.md (`json_views`, `scan_report`), hub-supplied text made terminal-safe
(`terminal_text`), sentences written once (`wording`) and ids typed by people (`ids`)."""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "ids",
    "json_views",
    "scan_report",
    "terminal_text",
    "wording",
]

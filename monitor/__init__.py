"""The service: configuration, command line, sources (hubs), the pipeline, scheduling and
the web UI. docs/architecture.md maps the subpackages; only settings- and runtime-level
modules sit here at the top."""

from __future__ import annotations

# Subpackages top to bottom (the import-linter layers), then the top-level modules.
__all__ = [
    "artists",
    "backscan",
    "build",
    "cli",
    "interface",
    "jobs",
    "log_format",
    "pipeline",
    "runtime",
    "secret_key",
    "services",
    "settings",
    "sources",
    "web",
]

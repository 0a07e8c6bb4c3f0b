"""monitor.cli: the ``stylewatch`` command line, one module per command group.

``main`` (the console entry point, ``stylewatch = "monitor.cli:main"``) and ``app`` (the
typer application) live in :mod:`monitor.cli.main`; ``context`` holds what every command
shares and ``options`` the option aliases they share.
"""

from __future__ import annotations

from monitor.cli.main import app, main

# The submodules, and the entry point's names (``main`` the function shadows its module).
__all__ = [
    "alerts",
    "app",
    "artists",
    "blobs",
    "commands",
    "context",
    "hub_scan",
    "hubs",
    "main",
    "models",
    "options",
    "users",
    "worker",
]

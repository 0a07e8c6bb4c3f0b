"""The service: configuration, command line, sources (hubs), scheduling and the web UI."""

from __future__ import annotations

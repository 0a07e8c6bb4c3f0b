"""Each package of monitor/ says what it holds in ``__all__`` (its modules, and the names its
``__init__`` defines); this pins the lists, so a module added, moved or dropped is a
change made here on purpose, and checks each list against the package on disk."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

EXPORTS = {
    "monitor": [
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
    ],
    "monitor.cli": [
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
    ],
    "monitor.services": [
        "alerts",
        "polling",
        "probing",
        "schedules",
        "serve",
        "signals",
        "worker",
    ],
    "monitor.web": [
        "account_pages",
        "alert_pages",
        "alert_routes",
        "api",
        "app",
        "auth",
        "blob_routes",
        "context",
        "evidence_strength",
        "executors",
        "filters",
        "login",
        "login_limits",
        "mail_limits",
        "metrics",
        "openapi",
        "password_reset",
        "passwords",
        "portal_pages",
        "probe_status",
        "queue_groups",
        "queue_pages",
        "rendering",
        "reports",
        "sessions",
        "takedown_pages",
    ],
    "monitor.build": [
        "alerts",
        "hubs",
        "probe",
        "sources",
    ],
    "monitor.backscan": [
        "hub_history",
        "names",
        "service",
        "style",
    ],
    "monitor.pipeline": [
        "alert",
        "poll",
        "probe",
        "probe_worker",
        "record",
        "score",
        "screen",
        "states",
        "takedown",
    ],
    "monitor.jobs": [
        "procrastinate_queue",
        "queue",
    ],
    "monitor.artists": [
        "artist_file",
        "lookup",
        "references",
    ],
    "monitor.sources": [
        "SOURCE_NAMES",
        "base",
        "civitai",
        "folder",
        "headers",
        "html_text",
        "http",
        "hub_json",
        "huggingface",
        "local_files",
        "targets",
    ],
    "monitor.interface": [
        "ids",
        "json_views",
        "scan_report",
        "terminal_text",
        "wording",
    ],
}


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_the_exports_are_pinned(package):
    assert list(importlib.import_module(package).__all__) == EXPORTS[package]


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_every_module_of_the_package_is_listed_and_every_name_exists(package):
    module = importlib.import_module(package)
    on_disk = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert on_disk <= set(module.__all__)
    for name in module.__all__:
        if name in on_disk:
            importlib.import_module(f"{package}.{name}")
        assert hasattr(module, name) or name in on_disk, name


def test_the_console_entry_point_resolves():
    from monitor.cli import main

    assert callable(main)

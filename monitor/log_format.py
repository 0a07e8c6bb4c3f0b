"""Log lines for people: the event name, then the record's key fields as ``key=value``."""

from __future__ import annotations

import logging

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class KeyValueFormatter(logging.Formatter):
    """Appends the ``extra`` fields of a record (source, upload_id, stage, …) to its line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        return f"{line} {' '.join(fields)}" if fields else line


def configure_logging(level: int) -> None:
    """Send log lines to stderr; only the CLI calls this."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("alembic", "aiohttp.access", "httpx", "filelock", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))

"""The web secret key: ``[web] secret_key``, or one generated once into the data dir.

It signs session cookies and the links in emails (unsubscribe, confirm), so it must stay the
same across restarts and never be shown.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from monitor.settings import Settings

KEY_FILE = "secret_key"
KEY_BYTES = 32


def web_secret_key(settings: Settings) -> bytes:
    """32 bytes derived from the configured key, or read from (or created in) the data dir."""
    configured = settings.web.secret_key
    if configured is not None:
        return hashlib.sha256(configured.get_secret_value().encode()).digest()
    return _key_from_file(settings.data_dir / KEY_FILE)


def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encoded)
    return base64.urlsafe_b64decode(path.read_bytes().strip())[:KEY_BYTES]

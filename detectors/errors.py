"""The error tree. Every error stylewatch raises on purpose is a ``StylewatchError``::

    StylewatchError
    ├── InputError            bad input from a user or a file: say what, exit 2
    │   ├── HeaderError       a safetensors header that breaks the format or a cap
    │   │   └── NeedMoreBytes the header is longer than the bytes given (not a fault)
    │   └── RefusedFile       a format that is never loaded (pickle) or not a model
    ├── ConfigError           a bad configuration key or value
    ├── SourceError           a hub misbehaved
    │   ├── SourceUnavailable retry with backoff (timeouts, 5xx, 429)
    │   │   └── UploadNotReady  the upload is incomplete on a working hub: retry it later
    │   └── SourceRejected    record it and move on (404, 410, garbage)
    ├── ProbeError            the GPU probe could not run
    ├── StorageError          the database or blob store failed
    └── DeliveryError         an alert could not be delivered

Messages are one line a user can act on; details live in attributes and never secrets.
Callers branch on the class, never on the message text.
"""

from __future__ import annotations


class StylewatchError(Exception):
    """Root of every error stylewatch raises on purpose."""


class InputError(StylewatchError):
    """Bad input from a user or a file; the CLI prints it and exits 2."""


class HeaderError(InputError):
    """A safetensors header that is malformed or exceeds a cap."""


class NeedMoreBytes(HeaderError):
    """The header is complete only with ``needed`` bytes from the start of the file."""

    def __init__(self, needed: int) -> None:
        super().__init__(f"the safetensors header needs the first {needed} bytes of the file")
        self.needed = needed


class RefusedFile(InputError):
    """A file stylewatch never loads (pickle-based formats) or that is not a model."""

    def __init__(self, message: str, *, format: str = "unknown") -> None:
        super().__init__(message)
        self.format = format


class ConfigError(StylewatchError):
    """A configuration key or value is invalid; ``problems`` holds one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SourceError(StylewatchError):
    """A model hub failed or answered something unusable."""


class SourceUnavailable(SourceError):
    """Transient: retry later with backoff (timeouts, 5xx, 429)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UploadNotReady(SourceUnavailable):
    """The hub is fine but the upload is not complete yet (a repo without its weights):
    retry that upload later; other requests to the hub need not wait."""


class SourceRejected(SourceError):
    """Permanent for this item: record it and move on (404, 410, malformed body).

    ``status`` is the HTTP status when the hub answered one, ``error_code`` the hub's own
    code for it (Hugging Face's ``X-Error-Code``, e.g. ``RepoNotFound``).
    """

    def __init__(
        self, message: str, *, status: int | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class ProbeError(StylewatchError):
    """The GPU probe could not run for an upload."""


class StorageError(StylewatchError):
    """The database or the blob store failed."""


class DeliveryError(StylewatchError):
    """An alert could not be delivered."""

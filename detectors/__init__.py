"""The detector core: pure functions from bytes, text and images to frozen results.

Nothing here does network or database I/O, reads the environment or the clock; the
import-linter contract in pyproject.toml enforces it.
"""

from __future__ import annotations

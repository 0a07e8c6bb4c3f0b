"""diffusers' and transformers' own console output, off.

Both libraries print progress bars ("Loading pipeline components", "Loading weights") and
advisory warnings ("No LoRA keys associated to CLIPTextModel ... safe to ignore", the
torchvision fallback notice) through handlers of their own. `scan`'s reader and the
service's log should see stylewatch's lines only; the libraries' errors still show.
"""

from __future__ import annotations

import importlib
import sys

_LIBRARIES = ("diffusers", "transformers")


def quiet_ml_libraries() -> None:
    """Quiet those of the libraries already imported: call it after importing the one about
    to load weights (cheap and idempotent; it never imports a library itself)."""
    for name in _LIBRARIES:
        if name in sys.modules:
            library = importlib.import_module(f"{name}.utils.logging")
            library.set_verbosity_error()
            library.disable_progress_bar()

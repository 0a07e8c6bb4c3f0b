"""Converting the published CSD checkpoint to safetensors: the one pickle stylewatch reads.

``convert_csd_checkpoint`` is called only by ``stylewatch models convert-csd``, on a file the
operator names. It reads the file once with torch's weights-only unpickler
(``weights_only=True``), which rebuilds tensors and plain containers and refuses every
other global, so a crafted file cannot run code; such a file is a ``RefusedFile``. The one
global added to its allowlist is ``argparse.Namespace`` (training scripts save their
``args``): an attribute bag whose rebuilding runs no code of the file's choosing.
"""

from __future__ import annotations

import argparse
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detectors.errors import InputError, RefusedFile

if TYPE_CHECKING:
    import torch

    from detectors.style.csd_model import CsdShape

MODULE_PREFIX = "module."
STATE_DICT_KEYS = ("model_state_dict", "state_dict")


@dataclass(frozen=True, slots=True)
class CsdConversion:
    """What a conversion wrote: the architecture, tensor and parameter counts, dropped keys."""

    shape: CsdShape
    tensors: int
    parameters: int
    dtypes: tuple[str, ...]
    dropped: tuple[str, ...]


def convert_csd_checkpoint(checkpoint: Path, out: Path) -> CsdConversion:
    """Read ``checkpoint`` (weights only), keep the backbone and the style head under their
    names without ``module.``, and write them to ``out`` (replaced atomically). Raises
    RefusedFile when the unpickler refuses the file, InputError when it is unreadable or
    not a CSD state dict."""
    from safetensors.torch import save_file

    from detectors.style.csd_model import csd_shape

    state = _state_dict(_load(checkpoint), checkpoint)
    kept, dropped = _csd_tensors(state)
    try:
        shape = csd_shape(kept)
    except ValueError as exc:
        raise InputError(f"{checkpoint.name} is not a CSD checkpoint: {exc}") from exc
    partial = out.with_name(out.name + ".partial")
    save_file(kept, partial, metadata={"format": "pt", "stylewatch": "csd"})
    os.replace(partial, out)
    return CsdConversion(
        shape=shape,
        tensors=len(kept),
        parameters=sum(t.numel() for t in kept.values()),
        dtypes=tuple(sorted({str(t.dtype).removeprefix("torch.") for t in kept.values()})),
        dropped=tuple(sorted(dropped)),
    )


def _load(path: Path) -> object:
    import torch

    try:
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            # Refused or not, the outcome is the error below; the warning would only add lines.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RefusedFile(
            f"{path.name}: torch's weights-only loader refused it ({_refusal(exc)}); "
            "only a checkpoint of tensors is converted",
            format="pickle",
        ) from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (RuntimeError, EOFError, ValueError) as exc:
        raise InputError(f"{path.name} is not a torch checkpoint: {_first_line(exc)}") from exc


def _state_dict(obj: object, path: Path) -> Mapping[str, torch.Tensor]:
    """The tensor mapping inside what torch.load returned: the checkpoint's
    ``model_state_dict`` (or ``state_dict``), or the object itself when it is one."""
    import torch

    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise InputError(f"{path.name} holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError(f"{path.name} holds no tensors")
    return tensors


def _csd_tensors(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The backbone and style head (contiguous, unshared, for safetensors), and the dropped
    names (the content head and anything else)."""
    from detectors.style.csd_model import BACKBONE, STYLE_HEAD

    kept: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, tensor in state.items():
        name = key.removeprefix(MODULE_PREFIX)
        if name.startswith(BACKBONE) or name == STYLE_HEAD:
            kept[name] = tensor.detach().contiguous().clone()
        else:
            dropped.append(name)
    return kept, dropped


def _refusal(exc: BaseException) -> str:
    """The line of torch's long refusal that names what was refused."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported" in line or "WeightsUnpickler error" in line:
            return line
    return lines[0] if lines else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

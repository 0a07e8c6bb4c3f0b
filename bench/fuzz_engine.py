"""The loop under bench/fuzz.py: feed a target inputs, book each outcome as a documented
error or an unhandled exception (kept with the first input that raised it), and time it.

``run_mutations`` is the seeded engine used when atheris is missing (and by the test suite);
the atheris worker drives the same :class:`Recorder` from libFuzzer's loop.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.fuzz_mutators import Mutator
from bench.fuzz_targets import Target

ROOT = Path(__file__).resolve().parents[1]
SLOW_INPUT_S = 1.0  # an input parsed slower than this is reported (a hang is a DoS too)
POOL_SIZE = 500  # mutants kept as parents, so edits stack across generations
POOL_SHARE = 0.05
MAX_MESSAGE_CHARS = 160


@dataclass(slots=True)
class Finding:
    """One kind of unhandled exception: its type and message, where it was raised, how often."""

    error: str
    where: str
    count: int = 0
    example: str | None = None  # the saved input that first raised it


@dataclass(slots=True)
class TargetResult:
    """What one target's run found; ``as_json``/``from_json`` carry it between processes."""

    target: str
    engine: str
    inputs: int = 0
    documented: int = 0  # inputs refused with the parser's documented error
    unhandled: int = 0
    seconds: float = 0.0
    slowest_s: float = 0.0
    slow_inputs: int = 0
    slowest_example: str | None = None  # the saved slowest input, when over SLOW_INPUT_S
    peak_rss_mb: float = 0.0
    findings: dict[str, Finding] = field(default_factory=dict)

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TargetResult:
        findings = {key: Finding(**value) for key, value in raw.pop("findings").items()}
        return cls(**raw, findings=findings)


class Recorder:
    """Runs inputs through one target and books the outcomes in ``result``."""

    def __init__(self, target: Target, engine: str, crash_dir: Path | None = None) -> None:
        self.target = target
        self.result = TargetResult(target.name, engine)
        self._crash_dir = crash_dir

    def run(self, data: bytes) -> None:
        start = time.perf_counter()
        try:
            self.target.parse(data)
        except self.target.expected as exc:
            if self._documented(exc):
                self.result.documented += 1
            else:
                self._unhandled(exc, data)
        except Exception as exc:  # the point of fuzzing: anything else is a finding
            self._unhandled(exc, data)
        elapsed = time.perf_counter() - start
        result = self.result
        result.inputs += 1
        result.seconds += elapsed
        if elapsed > SLOW_INPUT_S:
            result.slow_inputs += 1
            if elapsed > result.slowest_s:
                result.slowest_example = self._save(data, "slow")
        result.slowest_s = max(result.slowest_s, elapsed)
        result.peak_rss_mb = peak_rss_mb()

    def _documented(self, exc: BaseException) -> bool:
        if self.target.raised_in is None:
            return True
        frames = traceback.extract_tb(exc.__traceback__)
        return bool(frames) and frames[-1].filename == self.target.raised_in

    def _unhandled(self, exc: BaseException, data: bytes) -> None:
        where = _where(exc)
        message = " ".join(str(exc).split())[:MAX_MESSAGE_CHARS]
        key = f"{type(exc).__name__}@{where}"
        finding = self.result.findings.get(key)
        if finding is None:
            finding = Finding(f"{type(exc).__name__}: {message}", where)
            finding.example = self._save(data, "crash")
            self.result.findings[key] = finding
        finding.count += 1
        self.result.unhandled += 1

    def _save(self, data: bytes, why: str) -> str | None:
        if self._crash_dir is None:
            return None
        self._crash_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()[:12]
        path = self._crash_dir / f"{self.target.name}-{why}-{digest}.bin"
        path.write_bytes(data)
        return str(path)


def _where(exc: BaseException) -> str:
    """The innermost frame in stylewatch's own code (else the innermost), as path:line func."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [
        f
        for f in frames
        if f.filename.startswith(str(ROOT))
        and "/bench/" not in f.filename
        and "/.venv/" not in f.filename
    ]
    frame = (ours or frames)[-1] if frames else None
    if frame is None:
        return "?"
    path = Path(frame.filename)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return f"{shown}:{frame.lineno} {frame.name}"


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_mutations(
    target: Target, inputs: int, seed: int, crash_dir: Path | None = None
) -> TargetResult:
    """Feed ``target`` its seeds, then seeded mutants of them, ``inputs`` in all."""
    rng = random.Random(f"{seed}:{target.name}")
    seeds = [s[: target.max_len] for s in target.seeds()]
    mutator = Mutator(target.kind, seeds, target.max_len)
    recorder = Recorder(target, "mutator", crash_dir)
    pool = list(seeds)
    for data in seeds[:inputs]:
        recorder.run(data)
    for _ in range(inputs - min(inputs, len(seeds))):
        child = mutator.mutate(rng.choice(pool), rng)
        recorder.run(child)
        if rng.random() < POOL_SHARE:
            if len(pool) < POOL_SIZE:
                pool.append(child)
            else:
                pool[rng.randrange(len(seeds), POOL_SIZE)] = child
    return recorder.result


def write_result(result: TargetResult, path: Path) -> None:
    """Write ``result`` as JSON, atomically (a reader never sees half a file)."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(result.as_json()))
    partial.replace(path)

"""One target fuzzed in a process of its own, started by bench/fuzz.py.

A process per target because: the address-space cap then bounds that target alone; atheris
must instrument the parsers before anything imports them; and libFuzzer ends the process
itself when its runs are done (no Python code runs after ``atheris.Fuzz()``), so the result
is written to a file as the inputs go.

Run: ``python -m bench.fuzz_worker TARGET --inputs N --seed S --out DIR --engine atheris``
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import random
import resource
import shutil
import sys
import warnings
from pathlib import Path

ADDRESS_SPACE_CAP_BYTES = 2 * 2**30  # RLIMIT_AS per worker: an allocation past it fails
RSS_LIMIT_MB = 1_536  # libFuzzer's own watchdog, below the address-space cap
INPUT_TIMEOUT_S = 60  # libFuzzer ends a worker stuck this long on one input
RESULT_EVERY = 1_000  # inputs between result writes, so a killed worker still reports
# Parsers and the pure-Python libraries they lean on, instrumented for coverage feedback.
INSTRUMENTED = ["detectors", "monitor.sources", "monitor.settings", "monitor.artists.artist_file",
                "monitor.artists.references", "monitor.sources.targets", "monitor.sources.http",
                "PIL", "tomllib", "html", "yarl"]  # fmt: skip
# Imported before instrumenting: big libraries whose coverage says nothing of our parsers
# (instrumenting email's header parser alone takes seconds).
NOT_INSTRUMENTED = ("aiohttp", "email.utils", "pydantic_settings", "sqlmodel")


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP_BYTES, ADDRESS_SPACE_CAP_BYTES))
    for key in list(os.environ):  # defaults only: the operator's settings are not an input
        if key.startswith("STYLEWATCH_"):
            del os.environ[key]
    out = Path(args.out)
    work = out / "work" / args.target
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if args.engine == "atheris":
        _fuzz_with_atheris(args.target, args.inputs, args.seed, out, work)
    else:
        _fuzz_with_mutator(args.target, args.inputs, args.seed, out, work)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--inputs", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--engine", choices=("atheris", "mutator"), required=True)
    return parser.parse_args(argv)


def _quiet() -> None:
    """No log lines (FeedPage logs each odd item), and warnings raise, as in the test suite:
    a warning a parser lets out on hostile input is a finding, not noise."""
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("error")


def _fuzz_with_mutator(name: str, inputs: int, seed: int, out: Path, work: Path) -> None:
    from bench.fuzz_engine import run_mutations, write_result
    from bench.fuzz_targets import build_targets

    target = build_targets(work)[name]
    _quiet()
    write_result(run_mutations(target, inputs, seed, out / "crashes"), out / f"{name}.json")


def _fuzz_with_atheris(name: str, inputs: int, seed: int, out: Path, work: Path) -> None:
    import atheris

    for module in NOT_INSTRUMENTED:
        importlib.import_module(module)
    with atheris.instrument_imports(include=INSTRUMENTED):
        from bench import fuzz_targets
    from bench.fuzz_engine import Recorder, write_result
    from bench.fuzz_mutators import STRUCTURE_SHARE, Mutator

    target = fuzz_targets.build_targets(work)[name]
    seeds = [s[: target.max_len] for s in target.seeds()]
    corpus = work / "corpus"
    corpus.mkdir()
    for i, data in enumerate(seeds):
        (corpus / f"seed-{i:03d}").write_bytes(data)
    recorder = Recorder(target, "atheris", out / "crashes")
    mutator = Mutator(target.kind, seeds, target.max_len)
    result_path = out / f"{name}.json"

    def one_input(data: bytes) -> None:
        recorder.run(data)
        done = recorder.result.inputs
        if done % RESULT_EVERY == 0 or done >= inputs:
            write_result(recorder.result, result_path)

    def structure_aware(data: bytes, max_size: int, mutation_seed: int) -> bytes:
        rng = random.Random(mutation_seed)
        if rng.random() < STRUCTURE_SHARE:
            return mutator.mutate(data, rng)[:max_size]
        mutated: bytes = atheris.Mutate(data, max_size)
        return mutated

    libfuzzer_flags = [
        f"-runs={inputs}",
        f"-seed={max(seed, 1)}",
        f"-max_len={target.max_len}",
        f"-timeout={INPUT_TIMEOUT_S}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        "-print_final_stats=1",
    ]
    argv = [sys.argv[0], *libfuzzer_flags, str(corpus)]
    atheris.Setup(argv, one_input, custom_mutator=structure_aware)
    _quiet()
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Fuzz every parser of outside input: safetensors headers and their metadata JSON, Civitai
and Hugging Face JSON answers and HTTP headers, model cards and descriptions, scan targets,
config TOML, artist CSV/TOML lists and reference images (bench/fuzz_targets.py lists them).

100,000 inputs in all by default, shared out by each parser's weight, mutated from seeds
(the shared hub fixtures and inputs built in bench/fuzz_seeds.py, bombs included). With
atheris importable (``pip install -e '.[fuzz]'``) each target runs under libFuzzer, guided
by coverage of the instrumented parsers, half its mutations libFuzzer's and half
stylewatch's structure-aware ones; without it, the seeded mutators of
bench/fuzz_mutators.py run alone and the output says so.

Each target runs in a worker process capped with RLIMIT_AS; ``--jobs`` run at once. Every
exception a parser lets out besides its documented errors is counted as unhandled (must be
0) and its first input saved under bench/.data/fuzz/crashes/ for a regression test. Prints
per target the inputs, inputs/s (time in the parser) and peak RSS, then one line of JSON;
exits 1 when anything was unhandled.

Run: ``.venv/bin/python bench/fuzz.py [--inputs 100000] [--seed N] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fuzz_engine import Finding, TargetResult  # noqa: E402
from bench.fuzz_targets import MAX_IMAGE_INPUT_BYTES, MAX_INPUT_BYTES, build_targets  # noqa: E402
from bench.fuzz_worker import ADDRESS_SPACE_CAP_BYTES  # noqa: E402

DEFAULT_INPUTS = 100_000
DEFAULT_SEED = 20260812
DEFAULT_JOBS = 2
OUT = ROOT / "bench" / ".data" / "fuzz"
POLL_S = 0.2


@dataclass(slots=True)
class Run:
    """A worker process and what it was asked for."""

    target: str
    inputs: int
    process: subprocess.Popen[bytes]
    started: float
    log: Path


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    engine, note = choose_engine(args.engine)
    with tempfile.TemporaryDirectory() as scratch:
        targets = build_targets(Path(scratch))
    names = args.targets.split(",") if args.targets else list(targets)
    if unknown := sorted(set(names) - set(targets)):
        raise SystemExit(f"error: unknown targets {unknown}; known: {', '.join(targets)}")
    budgets = share_inputs(args.inputs, {name: targets[name].weight for name in names})
    costs = {name: budgets[name] * targets[name].cost for name in names}
    print(f"fuzz: {note}")
    print(
        f"fuzz: {args.inputs:,} inputs over {len(budgets)} parsers, seed {args.seed}, "
        f"{args.jobs} at a time, results in {args.out}"
    )
    start = time.monotonic()
    results = run_workers(budgets, costs, engine, args.seed, Path(args.out), args.jobs)
    summary = summarise(results, engine, args.seed, time.monotonic() - start)
    print_report(results, summary)
    print(json.dumps(summary))
    return 1 if summary["unhandled"] else 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=DEFAULT_INPUTS, help="inputs in all")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="workers at once")
    parser.add_argument("--engine", choices=("auto", "atheris", "mutator"), default="auto")
    parser.add_argument("--targets", help="comma-separated target names (default: all)")
    parser.add_argument("--out", default=str(OUT), help="results, saved inputs and logs")
    return parser.parse_args(argv)


def choose_engine(wanted: str) -> tuple[str, str]:
    """(engine, a line saying which and why): atheris when it imports, else the mutators."""
    if wanted == "mutator":
        return "mutator", "engine: seeded mutators (bench/fuzz_mutators.py), as asked"
    try:
        import atheris  # noqa: F401
    except ImportError as exc:
        if wanted == "atheris":
            why = f"error: atheris does not import ({exc}); pip install -e '.[fuzz]'"
            raise SystemExit(why) from exc
        return "mutator", (
            f"engine: seeded mutators (bench/fuzz_mutators.py) -- atheris is not importable "
            f"({exc}), so there is no coverage guidance; pip install -e '.[fuzz]' for it"
        )
    version = importlib.metadata.version("atheris")
    return "atheris", f"engine: atheris {version} (libFuzzer, coverage-guided) + own mutators"


def share_inputs(total: int, weights: dict[str, float]) -> dict[str, int]:
    """``total`` split by weight, at least one input each, summing to ``total`` exactly."""
    whole = sum(weights.values())
    shares = {name: max(1, int(total * w / whole)) for name, w in weights.items()}
    names = sorted(weights, key=weights.__getitem__, reverse=True)
    for i in range(total - sum(shares.values())):
        shares[names[i % len(names)]] += 1
    return shares


def run_workers(
    budgets: dict[str, int], costs: dict[str, float], engine: str, seed: int, out: Path, jobs: int
) -> list[TargetResult]:
    """Run a worker per target, ``jobs`` at a time, the longest expected first."""
    (out / "logs").mkdir(parents=True, exist_ok=True)
    pending = sorted(budgets, key=costs.__getitem__, reverse=True)
    running: list[Run] = []
    results: dict[str, TargetResult] = {}
    while pending or running:
        while pending and len(running) < jobs:
            running.append(_start(pending.pop(0), budgets, engine, seed, out))
        time.sleep(POLL_S)
        for run in [r for r in running if r.process.poll() is not None]:
            running.remove(run)
            results[run.target] = _collect(run, out)
            _progress(results[run.target], time.monotonic() - run.started)
    return [results[name] for name in budgets]


def _start(target: str, budgets: dict[str, int], engine: str, seed: int, out: Path) -> Run:
    result = out / f"{target}.json"
    result.unlink(missing_ok=True)
    log = out / "logs" / f"{target}.log"
    command = [
        sys.executable,
        "-m",
        "bench.fuzz_worker",
        target,
        "--inputs",
        str(budgets[target]),
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--engine",
        engine,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    return Run(target, budgets[target], process, time.monotonic(), log)


def _collect(run: Run, out: Path) -> TargetResult:
    """The worker's result; a worker that died or stopped short is an unhandled failure."""
    path = out / f"{run.target}.json"
    result = (
        TargetResult.from_json(json.loads(path.read_text()))
        if path.exists()
        else TargetResult(run.target, "?")
    )
    rc = run.process.returncode
    if rc != 0 or result.inputs < run.inputs:
        why = f"worker exited {rc} after {result.inputs} of {run.inputs} inputs; see {run.log}"
        result.findings["worker"] = Finding(why, run.log.name, count=1)
        result.unhandled += 1
    return result


def _progress(result: TargetResult, wall_s: float) -> None:
    status = "ok" if not result.unhandled else f"{result.unhandled} UNHANDLED"
    print(
        f"  {result.target:<22} {result.inputs:>7,} inputs in {wall_s:6.1f} s  {status}", flush=True
    )


def summarise(results: list[TargetResult], engine: str, seed: int, wall_s: float) -> dict[str, Any]:
    inputs = sum(r.inputs for r in results)
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "bench": "fuzz",
        "engine": engine,
        "seed": seed,
        "inputs": inputs,
        "unhandled": sum(r.unhandled for r in results),
        "documented_errors": sum(r.documented for r in results),
        "slow_inputs": sum(r.slow_inputs for r in results),
        "peak_rss_mb": round(max([children_mb, *(r.peak_rss_mb for r in results)]), 1),
        "rss_cap": f"RLIMIT_AS {ADDRESS_SPACE_CAP_BYTES // 2**20} MiB per worker",
        "input_cap_bytes": {"default": MAX_INPUT_BYTES, "reference_image": MAX_IMAGE_INPUT_BYTES},
        "wall_s": round(wall_s, 1),
        "inputs_per_s": round(inputs / wall_s, 1) if wall_s else 0.0,
        "targets": {
            r.target: {
                "inputs": r.inputs,
                "unhandled": r.unhandled,
                "inputs_per_s": round(r.inputs_per_s, 1),
                "peak_rss_mb": round(r.peak_rss_mb, 1),
            }
            for r in results
        },
        "findings": [
            {
                "target": r.target,
                "error": f.error,
                "where": f.where,
                "count": f.count,
                "example": f.example,
            }
            for r in results
            for f in r.findings.values()
        ],
        "slowest": {r.target: r.slowest_example for r in results if r.slowest_example},
    }


def print_report(results: list[TargetResult], summary: dict[str, Any]) -> None:
    print()
    head = ("target", "inputs", "refused", "unhandled", "inputs/s", "peak RSS", "slowest")
    print("{:<22} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8}".format(*head))
    for r in results:
        print(
            f"{r.target:<22} {r.inputs:>8,} {r.documented:>8,} {r.unhandled:>9,} "
            f"{r.inputs_per_s:>9,.0f} {r.peak_rss_mb:>6.0f} MB {r.slowest_s * 1000:>5.0f} ms"
        )
    print()
    for finding in summary["findings"]:
        print(
            f"UNHANDLED {finding['target']}: {finding['error']} at {finding['where']} "
            f"({finding['count']}x; input {finding['example']})"
        )
    for target, example in summary["slowest"].items():
        print(f"SLOW {target}: an input took over 1 s (slowest saved: {example})")
    cap = summary["rss_cap"]
    print(
        f"inputs: {summary['inputs']:,}  unhandled exceptions: {summary['unhandled']}  "
        f"slow inputs (> 1 s): {summary['slow_inputs']}"
    )
    print(
        f"peak RSS: {summary['peak_rss_mb']:.0f} MiB (cap: {cap}; inputs at most "
        f"{MAX_INPUT_BYTES // 1024} KiB, images {MAX_IMAGE_INPUT_BYTES // 1024} KiB)"
    )
    print(f"wall time: {summary['wall_s']:.0f} s, {summary['inputs_per_s']:,.0f} inputs/s overall")


if __name__ == "__main__":
    sys.exit(main())

"""bench/fuzz.py exercised in the suite: its engine runs a few hundred seeded mutants through
every parser of outside input (a parser that lets out an undocumented exception fails this
test), counts what it should, and the command ends with its JSON line. No atheris needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fuzz import share_inputs
from bench.fuzz_engine import TargetResult, run_mutations
from bench.fuzz_targets import Target, build_targets
from detectors.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
INPUTS_PER_TARGET = 30
SEED = 20260812


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Target]:
    return build_targets(tmp_path_factory.mktemp("fuzz"))


def test_every_parser_survives_seeded_mutants(targets, tmp_path):
    results = [
        run_mutations(target, INPUTS_PER_TARGET, SEED, tmp_path / "crashes")
        for target in targets.values()
    ]
    found = {r.target: list(r.findings.values()) for r in results if r.unhandled}
    assert found == {}
    assert sum(r.inputs for r in results) == INPUTS_PER_TARGET * len(targets) >= 400
    assert sum(r.documented for r in results) > 0  # mutants do reach the refusals
    assert not (tmp_path / "crashes").exists()


def _flaky_parser(data: bytes) -> None:
    if data.startswith(b"boom"):
        raise KeyError("boom")
    if not data:
        raise InputError("empty")


def test_the_engine_counts_a_crash_and_saves_its_input(tmp_path):
    target = Target("flaky", _flaky_parser, (InputError,), "text", lambda: [b"", b"boom", b"ok"])
    result = run_mutations(target, 50, SEED, tmp_path)
    assert result.inputs == 50
    assert result.documented >= 1
    assert result.unhandled >= 1
    (finding,) = result.findings.values()
    assert finding.error == "KeyError: 'boom'"
    assert finding.where.startswith("tests/integration/test_fuzz_bench.py:")
    assert finding.example is not None
    assert Path(finding.example).read_bytes().startswith(b"boom")
    assert TargetResult.from_json(result.as_json()) == result


def test_mutants_are_the_same_for_a_seed(targets):
    target = targets["safetensors_header"]
    first, second = (run_mutations(target, 40, 7).as_json() for _ in range(2))
    for result in (first, second):
        result.pop("seconds"), result.pop("slowest_s"), result.pop("peak_rss_mb")
    assert first == second


def test_inputs_are_shared_by_weight_exactly():
    shares = share_inputs(100_000, {"a": 2.0, "b": 1.0, "c": 0.25})
    assert sum(shares.values()) == 100_000
    assert shares["a"] > shares["b"] > shares["c"] > 0


@pytest.mark.slow
def test_the_command_runs_workers_and_ends_with_json(tmp_path):
    command = [sys.executable, "bench/fuzz.py", "--engine", "mutator", "--inputs", "120",
               "--targets", "hub_target,http_headers", "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["engine"] == "mutator"
    assert summary["inputs"] == 120
    assert summary["unhandled"] == 0
    assert set(summary["targets"]) == {"hub_target", "http_headers"}
    assert 0 < summary["peak_rss_mb"] < 2048
    assert "seeded mutators" in done.stdout

"""Every input in tests/fuzz_corpus/ once crashed (or slipped past) a parser; run through the
same call path bench/fuzz.py uses, each must now give a value or the documented error.

A file is named ``<target>-<what>.<ext>``, ``<target>`` being a bench/fuzz_targets.py name.
Inputs whose fix belongs to another module's owner are listed in ``OPEN`` and expected to
fail (strictly: once fixed, the test says so and the entry comes out).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.fuzz_engine import Recorder
from bench.fuzz_targets import Target, build_targets
from monitor.sources.html_text import html_to_text

CORPUS = Path(__file__).resolve().parents[2] / "fuzz_corpus"
OPEN: dict[str, str] = {}


def _cases() -> list[object]:
    cases: list[object] = []
    for path in sorted(CORPUS.iterdir()):
        marks = (
            [pytest.mark.xfail(strict=True, reason=OPEN[path.name])] if path.name in OPEN else []
        )
        cases.append(pytest.param(path, marks=marks, id=path.name))
    return cases


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Target]:
    return build_targets(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("path", _cases())
def test_corpus_input_is_handled(path: Path, targets: dict[str, Target]) -> None:
    recorder = Recorder(targets[path.name.split("-")[0]], "regression")
    recorder.run(path.read_bytes())
    assert recorder.result.findings == {}
    assert recorder.result.unhandled == 0


def test_corpus_names_known_targets(targets: dict[str, Target]) -> None:
    names = {path.name.split("-")[0] for path in CORPUS.iterdir()}
    assert names <= set(targets)
    assert len(names) >= 8


def test_description_with_unclosed_tags_parses_in_linear_time() -> None:
    html = (CORPUS / "civitai_description-unclosed-tags.html").read_text()
    start = time.perf_counter()
    html_to_text(html)
    assert time.perf_counter() - start < 0.1  # linear: a few milliseconds

"""The screening corpus (tests/data/screening) through the real screener: each case becomes a
safetensors file, goes through ``read_header`` and ``screen_header`` with its hub text, and
the per-rule precision and recall must meet #19's bar (precision >= 0.99, recall >= 0.98)."""

from __future__ import annotations

import copy
import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bench.screen_corpus import CORPUS, evaluate, file_bytes, judge, load
from detectors.names import ArtistIndex
from detectors.results import ArtistRef

ROOT = Path(__file__).resolve().parents[2]
POSITIVE_RULES = ("full_name", "reversed_name", "surname_cue", "common_name_cue")


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    return load()


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "screening_corpus", ROOT / "scripts" / "screening_corpus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_corpus_is_large_and_covers_every_rule(corpus: dict[str, Any]) -> None:
    cases = corpus["cases"]
    assert len(cases) >= 300
    rules = Counter(item["rule"] for item in cases)
    for rule in POSITIVE_RULES:
        assert rules[rule] >= 5, rule
    negatives = {rule for rule in rules if rule.startswith("negative:")}
    assert {"negative:split_tags", "negative:partial", "negative:common_words"} <= negatives
    assert rules["malformed"] >= 10
    assert sum(not item["expect"] for item in cases) >= 100  # negatives that look dangerous
    writers = json.dumps(cases)
    for key in ("ss_tag_frequency", "modelspec.trigger_phrase", "ot_config", "trainedWords"):
        assert key in writers, key


def test_the_committed_corpus_is_what_the_script_writes(
    corpus: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script()
    monkeypatch.setattr(script, "OUT", tmp_path / "corpus.json")
    script.main()
    assert json.loads((tmp_path / "corpus.json").read_text(encoding="utf-8")) == corpus
    assert CORPUS.is_file()


def test_precision_and_recall_per_rule_and_overall(corpus: dict[str, Any]) -> None:
    tallies = evaluate(corpus)
    assert set(POSITIVE_RULES) | {"overall", "malformed"} <= set(tallies)
    for rule, tally in tallies.items():
        assert tally.precision >= 0.99, (rule, tally.failures[:5])
        assert tally.recall >= 0.98, (rule, tally.failures[:5])
    assert tallies["overall"].found >= 250


def test_a_wrong_expectation_lowers_the_figures(corpus: dict[str, Any]) -> None:
    """The judge is not vacuous: a negative that names an artist, a positive that expects
    another artist and a malformed case marked well formed each show up."""
    broken = copy.deepcopy(corpus)
    negative = next(c for c in broken["cases"] if c["rule"] == "negative:plain")
    negative["metadata"]["ss_output_name"] = "greg_rutkowski_style"
    positive = next(c for c in broken["cases"] if c["rule"] == "surname_cue")
    positive["expect"] = ["Summer Rain"]
    odd = next(c for c in broken["cases"] if c["malformed"])
    odd["malformed"] = False
    tallies = evaluate(broken)
    assert tallies["overall"].wrong >= 2
    assert tallies["surname_cue"].missed == 1
    assert tallies["malformed"].wrong == 1


def test_malformed_cases_are_refused_and_never_flag(corpus: dict[str, Any]) -> None:
    refs = [
        ArtistRef(i, a["name"], tuple(a["aliases"])) for i, a in enumerate(corpus["artists"], 1)
    ]
    index = ArtistIndex.build(refs)
    odd = [c for c in corpus["cases"] if c["malformed"]]
    assert odd
    for item in odd:
        flagged, refused = judge(index, item)
        assert refused, item["id"]
        assert flagged == {}, item["id"]
        assert file_bytes(item)[:8] != b"\0" * 8

"""Regression tests for inputs the fuzzer (bench/fuzz.py) found; the inputs live in
tests/fuzz_corpus/."""

from __future__ import annotations

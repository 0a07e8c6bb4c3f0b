"""Which uploads' names are one model's versions: the queue groups them on one card."""

from __future__ import annotations

import pytest

from monitor.web.queue_groups import name_pattern


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Mira Ink Washes v2", "mira_ink_washes-v3.1 (reupload)"),
        ("Okafor-esque watercolor (SD1.5)", "Okafor-esque Watercolor [SDXL] e10"),
        ("Wren lines LoCon", "wren lines final fixed"),
        ("ＭＩＲＡ ink", "mira INK v2"),  # full-width letters fold
    ],
)
def test_version_marks_do_not_change_the_pattern(first: str, second: str) -> None:
    assert name_pattern(first) == name_pattern(second) != ""


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Mira Ink Washes", "Mira Ink Wash"),
        ("Wren lines", "Wren lines ink"),
    ],
)
def test_other_words_are_other_models(first: str, second: str) -> None:
    assert name_pattern(first) != name_pattern(second)


@pytest.mark.parametrize("name", ["v2", "art v2", "LoRA (SDXL) final", "e10 s2000"])
def test_a_name_of_version_marks_groups_nothing(name: str) -> None:
    assert name_pattern(name) == ""

from __future__ import annotations

import pytest

from monitor.interface.ids import parse_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("007", 7),
        ("", None),
        (None, None),
        ("²", None),
        ("٣", None),
        ("-1", None),
        ("1" * 19, None),
        ("1" * 5000, None),
        (" 1", None),
        ("Mara", None),
    ],
)
def test_parse_id(text, expected):
    assert parse_id(text) == expected

"""Precision and recall of name screening on the committed corpus (``tests/data/screening``).

Each case becomes a real safetensors file (its metadata as the header's ``__metadata__``,
or its ``raw_header`` text as written, or ``raw_header_hex`` bytes), goes through
``read_header`` and ``screen_header`` with its hub text, and is judged: an artist is
*flagged* at the default threshold (0.5); a case is *refused* when its metadata is malformed
or the header is refused outright.

Per rule: recall is the share of a rule's positive cases whose artists were all flagged;
precision is the share of flags that the rule fired (the flagged match's strongest
evidence) that were expected. ``malformed`` is judged the same way on refusals.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.errors import HeaderError
from detectors.names import ArtistIndex
from detectors.results import ArtistRef, TextField
from detectors.screening import read_header, screen_header

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "screening" / "corpus.json"
THRESHOLD = 0.5
_TENSOR = {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}


@dataclass
class Tally:
    """Counts for one rule: expected positives found / missed, flags right / wrong."""

    found: int = 0
    missed: int = 0
    right: int = 0
    wrong: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / (self.found + self.missed) if self.found + self.missed else 1.0

    @property
    def precision(self) -> float:
        return self.right / (self.right + self.wrong) if self.right + self.wrong else 1.0


def load(path: Path = CORPUS) -> dict[str, Any]:
    corpus: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return corpus


def file_bytes(item: dict[str, Any]) -> bytes:
    raw: bytes
    if "raw_header_hex" in item:  # bytes no text can hold (invalid UTF-8)
        raw = bytes.fromhex(str(item["raw_header_hex"]))
    elif "raw_header" in item:
        raw = str(item["raw_header"]).encode("utf-8")
    else:
        header = (
            {"__metadata__": item["metadata"], "x": _TENSOR} if item["metadata"] else {"x": _TENSOR}
        )
        raw = json.dumps(header, ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + b"\0\0"


def judge(index: ArtistIndex, item: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """The flagged artists (name -> rule of the strongest evidence) and whether refused."""
    hub_text = tuple(TextField(t["source"], t["text"]) for t in item["hub_text"])
    data = file_bytes(item)
    try:
        header = read_header(data, file_size=len(data), filename="case.safetensors")
    except HeaderError:
        return {
            m.artist: _rule(m.evidence) for m in index.match(hub_text) if m.score >= THRESHOLD
        }, True
    screening = screen_header(header, index, hub_text)
    flagged = {m.artist: _rule(m.evidence) for m in screening.matches if m.score >= THRESHOLD}
    return flagged, screening.malformed is not None


def _rule(evidence: Any) -> str:
    return str(evidence[0].rule) if evidence and evidence[0].rule else "unknown"


def evaluate(corpus: dict[str, Any]) -> dict[str, Tally]:
    """Tallies per rule, plus ``overall`` (flags) and ``malformed`` (refusals)."""
    refs = [
        ArtistRef(i, a["name"], tuple(a["aliases"])) for i, a in enumerate(corpus["artists"], 1)
    ]
    index = ArtistIndex.build(refs)
    tallies: dict[str, Tally] = {"overall": Tally(), "malformed": Tally()}
    for item in corpus["cases"]:
        flagged, refused = judge(index, item)
        expected = set(item["expect"])
        rule = item["rule"]
        own = tallies.setdefault(rule, Tally()) if not rule.startswith("negative") else None
        for name in expected:
            hit = name in flagged
            for tally in (t for t in (own, tallies["overall"]) if t is not None):
                tally.found += hit
                tally.missed += not hit
                if not hit:
                    tally.failures.append(f"#{item['id']} missed {name}")
        for name, fired in flagged.items():
            right = name in expected
            for tally in (tallies.setdefault(fired, Tally()), tallies["overall"]):
                tally.right += right
                tally.wrong += not right
                if not right:
                    tally.failures.append(f"#{item['id']} wrongly flagged {name} ({fired})")
        odd = tallies["malformed"]
        if item["malformed"]:
            odd.found += refused
            odd.missed += not refused
            odd.right += refused
        else:
            odd.wrong += refused
        if item["malformed"] != refused:
            odd.failures.append(f"#{item['id']} refused={refused}")
    return tallies


def case_counts(corpus: dict[str, Any]) -> Counter[str]:
    return Counter(item["rule"] for item in corpus["cases"])

"""Regenerate ``detectors/data/common_words.txt`` from the wordfreq package (a dev extra).

Every English word wordfreq rates at :data:`MIN_ZIPF` or more (about once in 300,000 words of
running text), folded as names are (``normalise``), one ``word<TAB>zipf`` a line, commonest
first. The name matcher calls a surname *distinctive* when it is not in this list nor in
``common_surnames.txt``. Run: ``.venv/bin/python scripts/common_words.py``.
"""

from __future__ import annotations

import importlib.metadata
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.name_normalise import normalise  # noqa: E402

MIN_ZIPF = 3.0  # the list goes a little below the matcher's cut, for the evidence it gives
OUT = ROOT / "detectors" / "data" / "common_words.txt"


def main() -> None:
    import wordfreq

    zipf: dict[str, float] = {}
    for word, freq in wordfreq.get_frequency_dict("en").items():
        value = round(math.log10(freq * 1e9), 2)
        if value < MIN_ZIPF:
            continue
        folded = normalise(word)
        if folded.isalpha() and folded.isascii():  # one word of letters
            zipf[folded] = max(zipf.get(folded, 0.0), value)
    ranked = sorted(zipf.items(), key=lambda item: (-item[1], item[0]))
    version = importlib.metadata.version("wordfreq")
    lines = [f"# wordfreq {version}, English, zipf >= {MIN_ZIPF}, {len(ranked)} words"]
    lines += [f"{word}\t{value}" for word, value in ranked]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(ranked)} words -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

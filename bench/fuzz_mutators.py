"""Seeded mutators for bench/fuzz.py: byte edits for every input, plus edits that know the
input's structure (a JSON value swapped at any depth, a safetensors length kept right, an
image header made to claim a huge size, a config line repeated or nested deep), so most
mutants get past the first check of the parser and test what lies behind it.

Used alone when atheris is missing, and inside atheris' custom mutator beside libFuzzer's.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from bench.fuzz_seeds import length_prefixed, png_chunk

MAX_STACKED_EDITS = 6
STRUCTURE_SHARE = 0.5  # edits that know the structure, when the kind has any
MAX_NESTING = 3_000  # deep enough to pass any recursion limit a parser might lean on
_DEEP = "\x00deep\x00"  # a JSON string replaced by deeply nested lists after dumping

INTERESTING_INTS = (0, 1, 2, 7, 8, 127, 128, 255, 256, 65_535, 2**31 - 1, 2**31, 2**32 - 1,
                    2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 10**8, 100_000_000)  # fmt: skip
WEIRD_JSON: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**31, 2**63, 2**64, -(2**63), 10**30, 1.5, -0.0, 1e308,
    float("inf"), float("-inf"), float("nan"), "", " ", "²", "١٢٣", "12", " 7 ", "\ud800",
    "\x00", "2026-02-30T25:61:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00",
    "Z", [], {}, [None], {"": None}, [1, 2, 3], ["a", 2, None], "<p>&#x10FFFF;</p>",
    "data:image/png;base64,", "a|²", "1786|", "|" + "9" * 30, "F16", "BF16", [0, 2**64],
    [2**63, 2**63], [-1, 4], "https://[::1/x", "http://h:99999/x", "../../etc/passwd", _DEEP,
)  # fmt: skip
TOKENS: dict[str, tuple[bytes, ...]] = {
    "json": (b"{", b"}", b"[", b"]", b'"', b",", b":", b"null", b"true", b"1e400", b"-0",
             b"NaN", b"Infinity", b'"\\ud800"', '"²"'.encode(), b"99999999999999999999999",
             b'"\\u0000"', b"1.5", b'""', b'{"":""}', b"\\", b'"id":"12"', b'"id":12'),
    "text": (b"\n", b"\r\n", b"---\n", b"\x00", b"\xef\xbb\xbf", b"\xff", b"<", b">", b";",
             b'rel="next"', b"Retry-After: ", b"Link: ", b"RateLimit: t=", b"hf:", b"civitai:",
             b"https://civitai.com/models/", b"https://huggingface.co/", b"http://[::1",
             b":99999", b"%00", b"%", "²".encode(), b"/blob/main/", b"?modelVersionId=", b"|",
             b"/", b"\\", b"<>", b"9" * 40),
    "html": (b"<p>", b"</p>", b"<br>", b"<!--", b"-->", b"<![CDATA[", b"&#x110000;",
             b"&#99999999999;", b"&amp", b"<script>", b"</", b"<!DOCTYPE", b"<?", b'<a href="',
             b"\x00", b"<li>", b"&", b"<div", b"\xed\xa0\x80", b"&#", b"9" * 40),
    "toml": (b"[", b"]", b"[[", b"]]", b"=", b'"', b"'''", b'"""', b"\n", b"1979-05-27T07:32:00Z",
             b"inf", b"nan", b"0x7fffffffffffffff", b"99999999999999999999", b"{", b"}", b",",
             b"[artist]", b"[[artist]]", b"name = ", b"aliases = ", b"data_dir = ",
             b"[sources.folder]", b"enabled = true", b'backend = "procrastinate"',
             b'url = "postgresql://x"', b"interval = -1", b'"\\u0000"', b'"\\uD800"', b"a.b.c = 1",
             b"9" * 40),
    "csv": (b",", b'"', b"\n", b"\r", b";", b"|", b"\x00", b"name", b"aliases", b"email",
            b"\xef\xbb\xbf", b'""', b" ", b"\xff"),
    "binary": (b"\x80\x02", b"\x80\x05", b"(dp0\n", b"cos\nsystem\n", b"PK\x03\x04", b"PK\x01\x02",
               b".pkl", b"data.pkl", b"{", b"\x00" * 8, b"\xff" * 8, b"]q", b"}q"),
    "image": (b"IHDR", b"IDAT", b"IEND", b"zTXt", b"iCCP", b"acTL", b"\xff\xd8\xff", b"\xff\xc0",
              b"\xff\xda", b"\xff\xd9", b"RIFF", b"WEBP", b"VP8X", b"VP8L", b"GIF89a", b"\x00" * 4),
}  # fmt: skip
TOKENS["safetensors"] = (*TOKENS["json"], b'"dtype":"F16"', b'"shape":[', b'"data_offsets":[0,',
                         b'"__metadata__":{', b"\xff\xff\xff\xff\xff\xff\xff\x7f")  # fmt: skip


class Mutator:
    """Stacks a few random edits on an input; deterministic for a given ``random.Random``."""

    def __init__(self, kind: str, seeds: Sequence[bytes], max_len: int) -> None:
        self.kind = kind
        self.seeds = list(seeds) or [b""]
        self.max_len = max_len
        self.tokens = TOKENS.get(kind, TOKENS["text"])
        self._structured: Callable[[bytes, random.Random], bytes] | None = {
            "json": self._json_edit,
            "safetensors": self._safetensors_edit,
            "image": self._image_edit,
            "toml": self._line_edit,
            "csv": self._line_edit,
            "text": self._line_edit,
            "html": self._line_edit,
        }.get(kind)

    def mutate(self, data: bytes, rng: random.Random) -> bytes:
        for _ in range(min(MAX_STACKED_EDITS, 1 + int(rng.expovariate(0.9)))):
            if self._structured is not None and rng.random() < STRUCTURE_SHARE:
                data = self._structured(data, rng)
            else:
                data = self._byte_edit(data, rng)
        return data[: self.max_len]

    # -- byte edits (any input) ---------------------------------------------------------

    def _byte_edit(self, data: bytes, rng: random.Random) -> bytes:
        at = rng.randint(0, len(data))
        end = rng.randint(at, min(len(data), at + rng.choice((1, 4, 16, 256))))
        edit = rng.randrange(9)
        if edit == 0 and data:  # flip a bit
            i = min(at, len(data) - 1)
            return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
        if edit == 1:
            return data[:at] + rng.choice(self.tokens) + data[at:]
        if edit == 2:
            return data[:at] + rng.randbytes(rng.randint(1, 8)) + data[end:]
        if edit == 3:
            return data[:at] + data[end:]
        if edit == 4:
            return data[: rng.randint(0, len(data))]
        if edit == 5:
            other = rng.choice(self.seeds)
            return data[:at] + other[rng.randint(0, len(other)) :]
        if edit == 6:
            chunk = data[at:end] or rng.choice(self.tokens)
            return data[:at] + chunk * rng.choice((2, 16, 1000, MAX_NESTING)) + data[at:]
        if edit == 7:
            return data[:at] + _packed_int(rng) + data[at + 8 :]
        return data[:at] + data[end:] + data[at:end]  # move a chunk to the end

    # -- structure-aware edits ----------------------------------------------------------

    def _json_edit(self, data: bytes, rng: random.Random) -> bytes:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            return self._byte_edit(data, rng)
        return dump_json(replace_somewhere(doc, rng), rng)

    def _safetensors_edit(self, data: bytes, rng: random.Random) -> bytes:
        header = data[8:]
        if rng.random() < 0.1:
            return _packed_int(rng) + header
        try:
            doc = json.loads(header)
        except (ValueError, RecursionError):
            return length_prefixed(self._byte_edit(header, rng))
        return length_prefixed(dump_json(replace_somewhere(doc, rng), rng))

    def _image_edit(self, data: bytes, rng: random.Random) -> bytes:
        side = rng.choice((0, 1, 6_000, 7_000, 10_000, 65_535, 100_000, 2**31 - 1, 2**32 - 1))
        width, height = side, rng.choice((side, 1, rng.randint(1, 70_000)))
        if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
            ihdr = struct.pack(">II", width, height) + data[24:29]
            return data[:8] + png_chunk(b"IHDR", ihdr) + data[33:]
        if data.startswith(b"\xff\xd8"):
            at = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
            if at != -1:
                size = struct.pack(">HH", height % 65_536, width % 65_536)
                return data[: at + 5] + size + data[at + 9 :]
        if data[:4] == b"RIFF" and data[12:16] == b"VP8X":
            canvas = ((width - 1) % 2**24).to_bytes(3, "little")
            return data[:24] + canvas + ((height - 1) % 2**24).to_bytes(3, "little") + data[30:]
        if data.startswith(b"GIF"):
            return data[:6] + struct.pack("<HH", width % 65_536, height % 65_536) + data[10:]
        if data.startswith(b"\x89PNG") and rng.random() < 0.5:
            text = b"k\0\0" + zlib.compress(b"a" * rng.choice((10, 2**20, 2**22)))
            return data[:33] + png_chunk(rng.choice((b"zTXt", b"iCCP")), text) + data[33:]
        return data[: rng.randint(0, len(data))]

    def _line_edit(self, data: bytes, rng: random.Random) -> bytes:
        lines = data.split(b"\n")
        i = rng.randrange(len(lines))
        edit = rng.randrange(4)
        if edit == 0:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif edit == 1 and len(lines) > 1:
            del lines[i]
        elif edit == 2:
            depth = rng.choice((10, 100, 1000, MAX_NESTING))
            opener = rng.choice((b"[", b"{a=", b"<p>", b"<b><i>", b'"'))
            lines.insert(i, b"x = " + opener * depth)
        else:
            lines[i] = rng.choice(self.tokens) + lines[i] + rng.choice(self.tokens)
        return b"\n".join(lines)


def _packed_int(rng: random.Random) -> bytes:
    value = rng.choice(INTERESTING_INTS) + rng.choice((0, 0, -1, 1))
    width = rng.choice((2, 4, 8))
    value %= 1 << (8 * width)
    return value.to_bytes(width, rng.choice(("little", "big")))


def replace_somewhere(doc: Any, rng: random.Random) -> Any:
    """``doc`` with one value, at any depth, replaced, removed, wrapped or renamed."""
    slots: list[tuple[Any, Any]] = []
    stack = [doc] if isinstance(doc, dict | list) else []
    while stack and len(slots) < 2_000:
        node = stack.pop()
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            slots.append((node, key))
            if isinstance(child, dict | list):
                stack.append(child)
    value = rng.choice(WEIRD_JSON)
    if not slots or rng.random() < 0.02:
        return value
    parent, key = rng.choice(slots)
    edit = rng.randrange(4)
    if edit == 0 and isinstance(parent, dict):
        parent[rng.choice(("", "²", "__metadata__", "id", str(key) + "\ud800"))] = parent.pop(key)
    elif edit == 1:
        del parent[key]
    elif edit == 2:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"": parent[key]}
    else:
        parent[key] = value
    return doc


def dump_json(doc: Any, rng: random.Random) -> bytes:
    """JSON text for ``doc`` (NaN and Infinity as Python writes them, surrogates kept)."""
    ascii_only = rng.random() < 0.5
    try:
        text = json.dumps(doc, ensure_ascii=ascii_only)
    except RecursionError:  # nested past what the encoder takes: an empty list instead
        return b"[]"
    deep = json.dumps(_DEEP, ensure_ascii=ascii_only)
    if deep in text:
        depth = rng.choice((17, 100, 1_000, MAX_NESTING))
        text = text.replace(deep, "[" * depth + "]" * depth, 1)
    return text.encode("utf-8", "surrogatepass")

"""Seed inputs for bench/fuzz.py: real hub fixtures when ``shared/hubs`` is there, and inputs
built here (safetensors headers, model cards, TOML/CSV, pickles, small images and bombs), so
the fuzzer starts from the shapes each parser meets in production, not from random bytes.

Everything is built in memory and deterministically; nothing here is unpickled or downloaded.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_HUBS = ROOT / "tests" / "data" / "hubs"
# Pixels an image header claims in the bomb seeds: past Pillow's error limit (2 * 89M), in its
# warning range (89M-178M), and past stylewatch's own cap (40M) but under Pillow's.
BOMB_SIDES = (100_000, 10_000, 7_000)


def shared_files(folder: str, suffix: str) -> list[bytes]:
    """The bytes of ``shared/hubs/<folder>/*<suffix>``; empty when the folder is absent."""
    path = SHARED_HUBS / folder
    return [p.read_bytes() for p in sorted(path.glob(f"*{suffix}"))] if path.is_dir() else []


# -- safetensors ----------------------------------------------------------------------------


def header_prefix(entries: Mapping[str, Any]) -> bytes:
    """The first ``8 + N`` bytes of a safetensors file: the length and the padded JSON."""
    header = json.dumps(entries, separators=(",", ":")).encode()
    return length_prefixed(header + b" " * (-len(header) % 8))


def length_prefixed(header: bytes) -> bytes:
    """``header`` behind its 8-byte little-endian length, as a safetensors file starts."""
    return len(header).to_bytes(8, "little") + header


def _tensors(names: list[str], shape: list[int], dtype: str = "F16") -> dict[str, Any]:
    entries: dict[str, Any] = {}
    nbytes = 2 * shape[0] * shape[1]
    for i, name in enumerate(names):
        entries[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [i * nbytes, (i + 1) * nbytes],
        }
    return entries


_KOHYA_SD1 = [
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight",
    "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
]
_PEFT_FLUX = [
    "transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight",
    "transformer.transformer_blocks.3.attn.add_q_proj.lora_A.weight",
]
_LYCORIS = [
    "lora_unet_mid_block_attentions_0_proj_in.hada_w1_a",
    "lora_unet_x.lokr_w1",
    "a.dora_scale",
]
_CHECKPOINT = ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"]

_KOHYA_METADATA = {
    "ss_output_name": "quellbrook_style_v1",
    "ss_tag_frequency": json.dumps({"10_quellbrook": {"by mara quellbrook": 40, "forest": 3}}),
    "ss_dataset_dirs": json.dumps({"10_quellbrook style": {"n_repeats": 10, "img_count": 42}}),
    "ss_datasets": json.dumps([{"subsets": [{"image_dir": "q", "class_tokens": "qb"}]}]),
    "ss_network_args": json.dumps({"algo": "loha"}),
    "ss_base_model_version": "sd_v1",
    "modelspec.title": "Quellbrook style",
    "modelspec.architecture": "stable-diffusion-v1/lora",
    "ot_config": json.dumps({"concepts": [{"name": "qb", "path": "/data/qb"}]}),
    "modelspec.thumbnail": "data:image/png;base64,iVBORw0KGgo=",
}


def safetensors_seeds() -> list[bytes]:
    """Header prefixes of the shared fixtures and of each layout the architecture rules know."""
    seeds = [header_prefix(json.loads(raw)) for raw in shared_files("safetensors", ".json")]
    built = [
        ({**_tensors(_KOHYA_SD1, [4, 768])}, _KOHYA_METADATA),
        (_tensors(_PEFT_FLUX, [4, 3072], "BF16"), {"name": "linocut", "software": "ai-toolkit"}),
        (_tensors(_LYCORIS, [2, 1024]), {"ss_network_module": "lycoris.kohya"}),
        (_tensors(_CHECKPOINT, [2, 2048], "F32"), {}),
        ({"emb_params": {"dtype": "F32", "shape": [2, 768], "data_offsets": [0, 6144]}}, {}),
    ]
    for tensors, metadata in built:
        seeds.append(header_prefix({"__metadata__": metadata, **tensors}))
    seeds.append(header_prefix({}))
    return seeds


def metadata_seeds() -> list[bytes]:
    """``__metadata__`` objects as JSON text (the fixtures' and kohya/OneTrainer shapes)."""
    objects = [
        json.loads(raw).get("__metadata__", {}) for raw in shared_files("safetensors", ".json")
    ]
    objects += [_KOHYA_METADATA, {"ss_tag_frequency": "{}", "trigger": "by an artist"}, {}]
    return [json.dumps(obj, ensure_ascii=False).encode() for obj in objects]


def json_text_seeds() -> list[bytes]:
    """JSON as it sits inside a metadata value: objects, lists, nesting, escapes."""
    texts = [value for value in _KOHYA_METADATA.values() if value.startswith(("{", "["))]
    texts += ['[1, 2.5, -3e10, true, null, "x"]', '{"a": {"b": [[]]}}', '"\\u00e9\\ud83c\\udfa8"']
    return [text.encode() for text in texts]


# -- files refused unread -------------------------------------------------------------------


def pickle_seeds() -> list[bytes]:
    """Pickle streams of every protocol, a torch-style zip holding ``data.pkl``, safetensors."""
    value = {"state_dict": [1, 2.0, "w"], "epoch": 3}
    seeds = [pickle.dumps(value, protocol=p) for p in range(pickle.HIGHEST_PROTOCOL + 1)]
    for member in ("archive/data.pkl", "archive/version"):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(member, seeds[2])
        seeds.append(out.getvalue())
    seeds.append(safetensors_seeds()[-1])
    seeds.append(b"GGUF\x03\x00\x00\x00")
    return seeds


# -- hub answers ----------------------------------------------------------------------------

_VERSION = {
    "id": 3219871,
    "modelId": 2871003,
    "name": "v1.0",
    "publishedAt": "2026-08-12T08:06:12.000Z",
    "baseModel": "SD 1.5",
    "description": "<p>Trained on <b>Mara Quellbrook</b>'s paintings</p>",
    "trainedWords": ["quellbrook style", ""],
    "files": [
        {
            "name": "q.safetensors",
            "type": "Model",
            "primary": True,
            "sizeKB": 18874.5,
            "downloadUrl": "https://civitai.com/api/download/models/3219871",
            "hashes": {"SHA256": "AB12", "AutoV2": "CD34"},
        }
    ],
    "images": [{"meta": {"prompt": "by mara quellbrook, forest"}}],
    "model": {"name": "Quellbrook"},
}
_MODEL = {
    "id": 2871003,
    "name": "Quellbrook",
    "type": "LORA",
    "tags": ["style"],
    "creator": {"username": "someone"},
    "modelVersions": [_VERSION],
}
_HF_MODEL = {
    "id": "someone/quellbrook-lora",
    "author": "someone",
    "sha": "0123abcd",
    "createdAt": "2026-08-12T08:06:12.000Z",
    "tags": ["lora", "base_model:adapter:x/y"],
    "library_name": "diffusers",
    "siblings": [{"rfilename": "q.safetensors", "size": 123, "lfs": {"sha256": "ab"}}],
    "cardData": {"instance_prompt": "qb style", "widget": [{"text": "qb, a fox"}], "tags": ["x"]},
}


def hub_seeds(shape: str) -> list[bytes]:
    """Hub JSON answers for one parser: the shared fixtures, then a built-in of that shape."""
    built = {
        "civitai_version": _VERSION,
        "civitai_model": _MODEL,
        "civitai_page": {"items": [_MODEL], "metadata": {"nextCursor": "1786|2871004"}},
        "hf_model": _HF_MODEL,
    }[shape]
    folder = "huggingface" if shape == "hf_model" else "civitai"
    seeds = shared_files(folder, ".json")
    if shape == "hf_model":
        seeds += [json.dumps(item).encode() for item in _hf_list_items()]
    return [json.dumps(built).encode(), *seeds]


def _hf_list_items() -> Iterator[Any]:
    for raw in shared_files("huggingface", "models_list.json"):
        doc = json.loads(raw)
        yield from doc if isinstance(doc, list) else []


def card_seeds() -> list[bytes]:
    """Model cards (README.md with YAML front matter) as a hub serves them."""
    seeds = shared_files("huggingface", ".md")
    seeds += [
        b"---\ntags:\n- lora\ninstance_prompt: qb style\n---\n# Quellbrook\nBy Mara Quellbrook.\n",
        b"---\n---\n",
        b"No front matter, just text \xc3\xa9 and a \xff bad byte.",
    ]
    return seeds


def html_seeds() -> list[bytes]:
    """Civitai descriptions: HTML from the fixtures' ``description`` values and built-ins."""
    seeds = [
        b"<p>Trained on <b>Mara</b> &amp; friends<br/>v2</p><ul><li>one</li></ul>",
        b"<script>alert(1)</script><!-- c --><div>&#x1F3A8; &notanentity; &#0;</div>",
    ]
    for raw in shared_files("civitai", ".json"):
        seeds += [text.encode() for text in _strings_under(json.loads(raw), "description")]
    return seeds[:12]


def _strings_under(node: Any, key: str) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, str):
                yield value
            yield from _strings_under(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _strings_under(value, key)


def http_header_seeds() -> list[bytes]:
    """``Link``, ``Retry-After`` and ``RateLimit`` headers, one per line."""
    link = b'Link: <https://huggingface.co/api/models?cursor=abc>; rel="next"'
    for raw in shared_files("huggingface", "link_header.txt"):
        link = next((ln for ln in raw.splitlines() if ln.startswith(b"Link:")), link)
    return [
        link,
        b"Retry-After: 120\nRateLimit: limit=100, remaining=0, reset=30; t=30",
        b"Retry-After: Wed, 21 Oct 2026 07:28:00 GMT",
        b'Link: </api/models?page=2>; rel="next", </api/models?page=9>; rel=last',
    ]


def hub_target_seeds() -> list[bytes]:
    """What a user passes to ``stylewatch scan``: hub targets, pasted URLs, local paths."""
    targets = [
        "hf:someone/quellbrook-lora",
        "hf:someone/repo/sub/q.safetensors",
        "civitai:3219871",
        "https://civitai.com/models/2871003?modelVersionId=3219871",
        "https://civitai.com/api/download/models/3219871",
        "https://huggingface.co/someone/repo/blob/main/q.safetensors",
        "https://huggingface.co/someone/repo/tree/main",
        "http://example.org/x",
        "./loras/q.safetensors",
    ]
    return [t.encode() for t in targets]


# -- configuration and artist lists ---------------------------------------------------------


def config_seeds() -> list[bytes]:
    """config.example.toml and small configs touching each section."""
    example = (ROOT / "config.example.toml").read_bytes()
    small = b"""
data_dir = "/tmp/sw"
[database]
url = "postgresql://u@127.0.0.1/sw"
[sources.civitai]
enabled = true
interval = 600
api_key = "secret"
[sources.folder]
enabled = true
path = "/tmp/loras"
[queue]
backend = "inprocess"
[[alerts.webhooks]]
url = "https://example.org/hook"
"""
    return [example, small, b"", b"[probe]\n", b"data_dir = 3\n[unknown]\nx = 1\n"]


def artist_csv_seeds() -> list[bytes]:
    """Artist lists as ``artist import`` reads them from a .csv file."""
    return [
        b"name,aliases,email\nMara Quellbrook,quellbrook;mq,mara@example.org\nIlse Varnhagen,,\n",
        b'\xef\xbb\xbfName, Aliases\n"Oriel, Hastmoor",hastmoor|h4stm00r\n',
        b"email,name\nx@example.org,\n",
        b"aliases\nno name column\n",
    ]


def artist_toml_seeds() -> list[bytes]:
    """Artist lists as ``artist import`` reads them from a .toml file."""
    return [
        b'[[artist]]\nname = "Mara Quellbrook"\naliases = ["quellbrook"]\nemail = "m@example.org"\n'
        b'[[artist]]\nname = "Ilse Varnhagen"\n',
        b'artist = [{name = "A", aliases = ["b", 3]}]\n',
        b'[artist]\nname = "x"\n',
        b"",
    ]


# -- images ---------------------------------------------------------------------------------


def _encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, idat: bytes = b"", extra: bytes = b"") -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (8-bit grey), with ``idat`` as its data
    and ``extra`` chunks between the two."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    chunks = ihdr + extra + png_chunk(b"IDAT", idat or zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunks + png_chunk(b"IEND", b"")


def image_seeds() -> list[bytes]:
    """Small real images of the allowed formats and others, truncated files and bombs."""
    rgb = Image.radial_gradient("L").resize((24, 16)).convert("RGB")
    seeds = [
        _encoded(rgb, "PNG"),
        _encoded(rgb.convert("RGBA"), "PNG"),
        _encoded(rgb.convert("P"), "PNG"),
        _encoded(rgb, "JPEG", quality=80),
        _encoded(rgb, "JPEG", progressive=True),
        _encoded(rgb, "WEBP", quality=60),
        _encoded(rgb, "WEBP", lossless=True),
        _encoded(rgb.convert("RGBA"), "WEBP", quality=60),  # VP8X: alpha, canvas size
        _encoded(rgb, "WEBP", save_all=True, append_images=[rgb.rotate(90)], duration=50),
        _encoded(rgb.convert("P"), "GIF"),  # seeds[9]
        _encoded(rgb, "BMP"),
        _encoded(rgb, "TIFF"),
    ]
    seeds += [seed[: len(seed) * 2 // 3] for seed in seeds[:9]]  # truncated files
    seeds += [png_claiming(side, side) for side in BOMB_SIDES]
    # A real decompression bomb: 6000 x 6000 zero pixels (36M, under the 40M cap) in ~40 KB.
    rows = zlib.compress((b"\0" * 6001) * 6000, 9)
    seeds.append(png_claiming(6000, 6000, rows))
    seeds.append(_with_jpeg_size(seeds[3], 65_000, 65_000))
    seeds.append(seeds[9][:6] + struct.pack("<HH", 65_535, 65_535) + seeds[9][10:])  # GIF screen
    seeds.append(png_chunk(b"tEXt", b"x") * 3)  # chunks without a signature
    text_bomb = png_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * 2**21))  # 2 MiB of text
    seeds.append(png_claiming(8, 8, extra=text_bomb))
    return seeds


def _with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF0/SOF2 frame header rewritten to claim ``width`` x ``height``."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = jpeg.find(marker)
        if at != -1:
            size = struct.pack(">HH", height, width)
            return jpeg[: at + 5] + size + jpeg[at + 9 :]
    return jpeg
